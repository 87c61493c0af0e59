from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "booking_service.events"
    label = "events"
    default_auto_field = "django.db.models.BigAutoField"
