from django.apps import AppConfig


class TokensConfig(AppConfig):
    name = "users_service.tokens"
    label = "tokens"
