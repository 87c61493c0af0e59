from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from users_service.tokens.services import service_token_issue


class Command(BaseCommand):
    help = "Print an access token for a service principal (role `service`)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the calling service, e.g. booking")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"]
        if not name.replace("-", "").replace("_", "").isalnum():
            raise CommandError("name: letters, digits, - and _ only")
        self.stdout.write(service_token_issue(name=name))
