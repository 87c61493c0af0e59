from booking_service.api.batched import BatchedBookings
from booking_service.api.bookings import BookingCreateApi, BookingDetailApi, BookingListCreateApi
from booking_service.api.checkins import CheckInApi, CheckInSummaryApi
from booking_service.api.events import (
    EventCreateApi,
    EventDetailApi,
    EventListCreateApi,
    EventMineApi,
)
from booking_service.api.payments import PaymentDetailApi, PaymentListCreateApi
from booking_service.api.reports import AttendeesApi, AttendeesCsvApi, SalesApi
from booking_service.api.resources import AvailabilityApi, ResourceDetailApi, ResourceListCreateApi
from booking_service.api.tickets import (
    BookingTicketsApi,
    EventStaffApi,
    EventStaffDetailApi,
    TicketJwksAliasApi,
    TicketJwksApi,
)
from servicekit.urls import common_urlpatterns, route

urlpatterns = [
    *common_urlpatterns(),
    route("api/events/create", EventCreateApi.as_view(), name="event-create"),
    route("api/events", EventListCreateApi.as_view(), name="event-list"),
    route("api/events/mine", EventMineApi.as_view(), name="event-mine"),
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
    # Tickets and check-in.
    route(".well-known/jwks.json", TicketJwksApi.as_view(), name="ticket-jwks"),
    # The same keys under /api/, for one public origin whose /.well-known/ is the users
    # service's (the proxy and the Ingress route /api/tickets here).
    route("api/tickets/jwks.json", TicketJwksAliasApi.as_view(), name="ticket-jwks-api"),
    route("api/bookings/<int:pk>/tickets", BookingTicketsApi.as_view(), name="booking-tickets"),
    route("api/events/<int:pk>/staff", EventStaffApi.as_view(), name="event-staff"),
    route(
        "api/events/<int:pk>/staff/<uuid:user_id>",
        EventStaffDetailApi.as_view(),
        name="event-staff-detail",
    ),
    route("api/checkins", CheckInApi.as_view(), name="checkins"),
    route(
        "api/events/<int:pk>/checkins/summary",
        CheckInSummaryApi.as_view(),
        name="checkin-summary",
    ),
    route("api/events/<int:pk>/attendees", AttendeesApi.as_view(), name="event-attendees"),
    route("api/events/<int:pk>/attendees.csv", AttendeesCsvApi.as_view(), name="attendees-csv"),
    route("api/events/<int:pk>/sales", SalesApi.as_view(), name="event-sales"),
]

handler400 = "servicekit.problems.handler400"
handler403 = "servicekit.problems.handler403"
handler404 = "servicekit.problems.handler404"
handler500 = "servicekit.problems.handler500"
