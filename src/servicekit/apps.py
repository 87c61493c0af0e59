from django.apps import AppConfig


class ServiceKitConfig(AppConfig):
    name = "servicekit"
    label = "servicekit"
    verbose_name = "Service kit"

    def ready(self) -> None:
        from servicekit import openapi  # noqa: F401  (registers the schema extension)
