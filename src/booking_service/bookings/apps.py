from django.apps import AppConfig


class BookingsConfig(AppConfig):
    name = "booking_service.bookings"
    label = "bookings"
    default_auto_field = "django.db.models.BigAutoField"
