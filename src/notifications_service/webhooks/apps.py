from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "notifications_service.webhooks"
    label = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"
