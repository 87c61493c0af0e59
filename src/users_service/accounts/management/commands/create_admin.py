from __future__ import annotations

import getpass
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rest_framework.exceptions import ValidationError

from users_service.accounts.services import user_create_admin


class Command(BaseCommand):
    help = (
        "Create an admin (or promote an existing account). The password comes from "
        "--password-stdin, the TURNSTILE_ADMIN_PASSWORD environment variable, or a prompt."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--name", default="Administrator")
        parser.add_argument("--password-stdin", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = os.environ.get("TURNSTILE_ADMIN_PASSWORD") or getpass.getpass("Password: ")
        try:
            user = user_create_admin(
                name=options["name"], email=options["email"], password=password
            )
        except ValidationError as exc:
            raise CommandError(str(exc.detail)) from exc
        self.stdout.write(f"admin {user.email} ({user.id})")
