from booking_service.api.batched import BatchedBookings
from booking_service.api.bookings import BookingCreateApi, BookingDetailApi, BookingListCreateApi
from booking_service.api.events import EventCreateApi, EventDetailApi, EventListCreateApi
from booking_service.api.payments import PaymentDetailApi, PaymentListCreateApi
from booking_service.api.resources import AvailabilityApi, ResourceDetailApi, ResourceListCreateApi
from servicekit.urls import common_urlpatterns, route

urlpatterns = [
    *common_urlpatterns(),
    route("api/events/create", EventCreateApi.as_view(), name="event-create"),
    route("api/events", EventListCreateApi.as_view(), name="event-list"),
    route("api/events/<int:pk>", EventDetailApi.as_view(), name="event-detail"),
    # A plain ticket hold is answered by the batcher; everything else by the DRF view.
    route(
        "api/bookings/create", BatchedBookings(BookingCreateApi.as_view()), name="booking-create"
    ),
    route("api/bookings", BatchedBookings(BookingListCreateApi.as_view()), name="booking-list"),
    route("api/bookings/<int:pk>", BookingDetailApi.as_view(), name="booking-detail"),
    route("api/payments", PaymentListCreateApi.as_view(), name="payment-list"),
    route("api/payments/<int:pk>", PaymentDetailApi.as_view(), name="payment-detail"),
    route("api/resources", ResourceListCreateApi.as_view(), name="resource-list"),
    route("api/resources/<int:pk>", ResourceDetailApi.as_view(), name="resource-detail"),
    route("api/availability", AvailabilityApi.as_view(), name="availability"),
]

handler400 = "servicekit.problems.handler400"
handler403 = "servicekit.problems.handler403"
handler404 = "servicekit.problems.handler404"
handler500 = "servicekit.problems.handler500"
