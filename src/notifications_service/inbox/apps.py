from django.apps import AppConfig


class InboxConfig(AppConfig):
    name = "notifications_service.inbox"
    label = "inbox"
    default_auto_field = "django.db.models.BigAutoField"
