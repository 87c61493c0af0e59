from django.apps import AppConfig


class OrganizerConfig(AppConfig):
    name = "web_service.organizer"
    label = "web_organizer"
