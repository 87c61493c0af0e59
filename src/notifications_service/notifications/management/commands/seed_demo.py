"""`seed_demo --context '<json>'`: the stack's demo data step. The notifications service has
no demo rows of its own (they come from the other services' messages); it reports where the
development mail goes, as the last line of its output."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Demo data for the development stack (prints one JSON line)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--context", default="{}")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.MAIL_DIR:
            mail = (
                f"every email is kept as an .eml file in {settings.MAIL_DIR} "
                f"(SMTP sink on {settings.EMAIL_HOST}:{settings.EMAIL_PORT})"
            )
        else:
            mail = f"sent over SMTP to {settings.EMAIL_HOST}:{settings.EMAIL_PORT}"
        self.stdout.write(json.dumps({"mail": mail}))
