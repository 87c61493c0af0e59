from booking_service.resources.apis import AvailabilityApi, ResourceDetailApi, ResourceListCreateApi
from servicekit.urls import route

urlpatterns = [
    route("api/resources", ResourceListCreateApi.as_view(), name="resource-list"),
    route("api/resources/<int:pk>", ResourceDetailApi.as_view(), name="resource-detail"),
    route("api/availability", AvailabilityApi.as_view(), name="availability"),
]
