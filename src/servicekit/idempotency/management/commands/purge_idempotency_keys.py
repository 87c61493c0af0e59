from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from servicekit.idempotency.services import idempotency_keys_purge
from servicekit.retention import PRUNE_LIMIT


class Command(BaseCommand):
    help = "Delete Idempotency-Key records older than their retention (24 h by default)."

    def handle(self, *args: Any, **options: Any) -> None:
        deleted = 0
        while True:  # in bounded steps, however many there are
            step = idempotency_keys_purge()
            deleted += step
            if step < PRUNE_LIMIT:
                break
        self.stdout.write(f"deleted {deleted} expired idempotency keys")
