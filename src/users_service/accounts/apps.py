from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "users_service.accounts"
    label = "accounts"
