from __future__ import annotations

import getpass
import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from servicekit.errors import InvalidFields
from users_service.accounts.services import EmailTaken, user_create_admin


class Command(BaseCommand):
    help = (
        "Create an admin. The password comes from --password-stdin, the "
        "TURNSTILE_ADMIN_PASSWORD environment variable, or a prompt. An existing account "
        "with that email is refused unless --promote-existing is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--name", default="Administrator")
        parser.add_argument("--password-stdin", action="store_true")
        parser.add_argument(
            "--promote-existing",
            action="store_true",
            help="make an existing account with this email admin (its password is kept)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = os.environ.get("TURNSTILE_ADMIN_PASSWORD") or getpass.getpass("Password: ")
        try:
            created = user_create_admin(
                name=options["name"],
                email=options["email"],
                password=password,
                promote_existing=options["promote_existing"],
            )
        except EmailTaken as exc:
            raise CommandError(
                f"refused: an account with the email {options['email']} already exists; "
                "nothing was changed. Use --promote-existing to make it admin (its password "
                "is kept)."
            ) from exc
        except InvalidFields as exc:
            reasons = "; ".join(
                f"{field}: {' '.join(messages)}" for field, messages in (exc.errors or {}).items()
            )
            raise CommandError(f"refused: {reasons}") from exc
        user = created.user
        if created.promoted:
            self.stdout.write(
                f"promoted existing account {user.id} ({user.email}) to admin (password unchanged)"
            )
        else:
            self.stdout.write(f"created a new admin {user.id} ({user.email})")
