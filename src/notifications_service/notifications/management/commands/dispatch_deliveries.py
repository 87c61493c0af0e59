"""`python -m notifications_service dispatch_deliveries`: send pending emails and webhooks."""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

import psycopg
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

from notifications_service.notifications.services import (
    DELIVERY_NOTIFY_CHANNEL,
    email_deliveries_dispatch,
    email_deliveries_prune,
)
from notifications_service.webhooks.services import (
    webhook_deliveries_dispatch,
    webhook_deliveries_prune,
)
from servicekit.retention import Pruner
from servicekit.workers import Worker, stop_on_signals

logger = logging.getLogger(__name__)


class DeliveryDispatcher(Worker):
    """Rounds of due deliveries; between them, a LISTEN for new ones. Each delivery's failures
    are recorded on its row, so a round that still raises is a bug of the round. Sent emails
    and delivered webhooks past `DELIVERY_RETENTION_SECONDS` are pruned, each kind a step
    of its own (servicekit.retention)."""

    name = "dispatch_deliveries"
    label = "delivery dispatcher"

    def __init__(self, *, batch_size: int, poll_interval: float) -> None:
        self.batch_size = batch_size
        self.idle_interval = poll_interval
        self._listen: psycopg.Connection[Any] | None = None
        self.pruners = [
            Pruner("sent emails", lambda limit: email_deliveries_prune(limit=limit)),
            Pruner("delivered webhooks", lambda limit: webhook_deliveries_prune(limit=limit)),
        ]

    def round(self) -> bool:
        email = email_deliveries_dispatch(batch_size=self.batch_size)
        webhooks = webhook_deliveries_dispatch(batch_size=self.batch_size)
        for pruner in self.pruners:
            pruner.run(self)
        if email.attempted or webhooks.attempted:
            logger.info(
                "dispatched: email %d sent, %d retrying, %d failed; "
                "webhooks %d delivered, %d retrying, %d failed",
                email.sent,
                email.retried,
                email.failed,
                webhooks.sent,
                webhooks.retried,
                webhooks.failed,
            )
        return email.attempted >= self.batch_size or webhooks.attempted >= self.batch_size

    def wait_for_work(self, stop: threading.Event, timeout: float) -> bool:
        """Until a new delivery is committed (NOTIFY) or `timeout` passes (retries due)."""
        try:
            if self._listen is None or self._listen.closed:
                params = connection.get_connection_params()
                params.pop("cursor_factory", None)
                self._listen = psycopg.connect(**params, autocommit=True)
                self._listen.execute(f"LISTEN {DELIVERY_NOTIFY_CHANNEL}")
            for _notify in self._listen.notifies(timeout=timeout, stop_after=1):
                return True
        except psycopg.Error:
            self._close_listen()
            stop.wait(timeout)
        return False

    def stopped(self) -> None:
        self._close_listen()
        super().stopped()

    def _close_listen(self) -> None:
        if self._listen is not None:
            with contextlib.suppress(psycopg.Error):
                self._listen.close()
            self._listen = None


class Command(BaseCommand):
    help = "Send due email and webhook deliveries, retrying failures with backoff."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--poll-interval", type=float, default=1.0)
        parser.add_argument("--batch-size", type=int, default=50)
        parser.add_argument("--once", action="store_true", help="one round, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        dispatcher = DeliveryDispatcher(
            batch_size=options["batch_size"], poll_interval=options["poll_interval"]
        )
        if options["once"]:
            dispatcher.round()
            return
        dispatcher.run(stop_on_signals())
