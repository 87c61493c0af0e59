from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from booking_service.tickets.keys import ticket_signing_key_rotate


class Command(BaseCommand):
    help = (
        "Start signing ticket codes with a new key; the old key stays in the JWKS while a "
        "ticket it signed is not void."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        key = ticket_signing_key_rotate()
        self.stdout.write(f"new ticket signing key {key.kid}")
