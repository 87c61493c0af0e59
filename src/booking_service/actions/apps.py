from django.apps import AppConfig


class ActionsConfig(AppConfig):
    name = "booking_service.actions"
    label = "actions"
