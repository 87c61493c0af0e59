"""`python -m notifications_service prune_processed_messages [--days 35]`.

The consumers prune their processed-message ids themselves, past
`PROCESSED_MESSAGE_RETENTION_SECONDS` (docs/operations/retention.md); this command does it
once, by hand, with a retention of its own. Ids only need to outlive any possible
redelivery: the stream keeps messages 30 days, so ids older than that can never come back.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications_service.inbox.services import processed_messages_prune
from servicekit.retention import PRUNE_LIMIT


class Command(BaseCommand):
    help = "Delete processed-message records older than the stream's retention."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=35)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["days"] < 31:
            raise CommandError("keep at least 31 days: the stream redelivers up to 30 days back")
        older_than = timedelta(days=options["days"])
        deleted = 0
        while True:  # in bounded steps, however many there are
            step = processed_messages_prune(older_than=older_than)
            deleted += step
            if step < PRUNE_LIMIT:
                break
        self.stdout.write(f"deleted {deleted} processed-message records")
