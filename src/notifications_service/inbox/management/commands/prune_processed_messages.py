"""`python -m notifications_service prune_processed_messages [--days 35]`.

Processed message ids only need to outlive any possible redelivery: the stream keeps messages
30 days, so ids older than that can never come back. Run it daily (cron, a scheduler).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications_service.inbox.services import processed_messages_prune


class Command(BaseCommand):
    help = "Delete processed-message records older than the stream's retention."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=35)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["days"] < 31:
            raise CommandError("keep at least 31 days: the stream redelivers up to 30 days back")
        deleted = processed_messages_prune(older_than_days=options["days"])
        self.stdout.write(f"deleted {deleted} processed-message records")
