"""`python -m notifications_service dispatch_deliveries`: send pending emails and webhooks."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import psycopg
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, close_old_connections, connection

from notifications_service.notifications.services import (
    DELIVERY_NOTIFY_CHANNEL,
    email_deliveries_dispatch,
)
from notifications_service.webhooks.services import webhook_deliveries_dispatch
from servicekit.bus import backoff_delay

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Send due email and webhook deliveries, retrying failures with backoff."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--poll-interval", type=float, default=1.0)
        parser.add_argument("--batch-size", type=int, default=50)
        parser.add_argument("--once", action="store_true", help="one round, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        if options["once"]:
            self._round(options["batch_size"])
            return

        def on_signal(signum: int, frame: object) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        logger.info("delivery dispatcher started")
        listen: psycopg.Connection[Any] | None = None
        failures = 0
        while not stop.is_set():
            try:
                close_old_connections()
                busy = self._round(options["batch_size"])
                failures = 0
            except DatabaseError as exc:
                failures += 1
                connection.close()
                delay = backoff_delay(failures, initial=0.5, maximum=10.0)
                logger.warning("dispatcher: database error (%s); retry in %.1fs", exc, delay)
                stop.wait(delay)
                continue
            except Exception:
                # Each delivery's failures are recorded on its row; whatever still gets here
                # is a bug of the round, no reason to stop sending for everyone.
                failures += 1
                delay = backoff_delay(failures, initial=0.5, maximum=10.0)
                logger.exception("dispatcher: round failed; retry in %.1fs", delay)
                stop.wait(delay)
                continue
            if busy:
                continue
            listen = self._wait(listen, options["poll_interval"], stop)
        if listen is not None:
            listen.close()

    def _round(self, batch_size: int) -> bool:
        email = email_deliveries_dispatch(batch_size=batch_size)
        webhooks = webhook_deliveries_dispatch(batch_size=batch_size)
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
        return email.attempted >= batch_size or webhooks.attempted >= batch_size

    def _wait(
        self, listen: psycopg.Connection[Any] | None, timeout: float, stop: threading.Event
    ) -> psycopg.Connection[Any] | None:
        """Until a new delivery is committed (NOTIFY) or `timeout` passes (retries due)."""
        try:
            if listen is None or listen.closed:
                params = connection.get_connection_params()
                params.pop("cursor_factory", None)
                listen = psycopg.connect(**params, autocommit=True)
                listen.execute(f"LISTEN {DELIVERY_NOTIFY_CHANNEL}")
            for _notify in listen.notifies(timeout=timeout, stop_after=1):
                pass
            return listen
        except psycopg.Error:
            stop.wait(timeout)
            return None
