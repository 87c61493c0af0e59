from booking_service.bookings.apis import BookingCreateApi, BookingDetailApi, BookingListCreateApi
from servicekit.urls import route

urlpatterns = [
    route("api/bookings/create", BookingCreateApi.as_view(), name="booking-create"),
    route("api/bookings", BookingListCreateApi.as_view(), name="booking-list"),
    route("api/bookings/<int:pk>", BookingDetailApi.as_view(), name="booking-detail"),
]
