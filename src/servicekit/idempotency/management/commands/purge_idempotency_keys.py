from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from servicekit.idempotency.services import idempotency_keys_purge


class Command(BaseCommand):
    help = "Delete Idempotency-Key records older than their retention (24 h by default)."

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = idempotency_keys_purge()
        self.stdout.write(f"deleted {deleted} expired idempotency keys")
