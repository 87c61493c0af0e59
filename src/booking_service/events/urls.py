from booking_service.events.apis import EventCreateApi, EventDetailApi, EventListCreateApi
from servicekit.urls import route

urlpatterns = [
    route("api/events/create", EventCreateApi.as_view(), name="event-create"),
    route("api/events", EventListCreateApi.as_view(), name="event-list"),
    route("api/events/<int:pk>", EventDetailApi.as_view(), name="event-detail"),
]
