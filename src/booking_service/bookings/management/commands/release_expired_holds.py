from __future__ import annotations

import contextlib
import datetime as dt
import logging
import signal
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, close_old_connections

from booking_service.bookings.services import release_expired_holds
from booking_service.bookings.services.expiry import DATABASE_AWAY
from booking_service.payments.services import payments_refund_orphaned, payments_resolve_stale
from servicekit.idempotency.services import idempotency_keys_purge

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Expire pending bookings whose hold has ended (status canceled, cancel_reason "
        "expired), return their inventory and publish booking.expired. With --loop, keep "
        "doing it; each round also refunds payments of canceled bookings left unrefunded, "
        "settles payments left pending by a crash, and purges old Idempotency-Key records."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", action="store_true", help="run until stopped")
        parser.add_argument(
            "--interval",
            type=float,
            default=float(settings.BOOKING_SWEEP_INTERVAL_SECONDS),
            help="seconds between rounds with --loop",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["loop"]:
            released = release_expired_holds()
            self.stdout.write(f"released {released} expired holds")
            return
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while not stopping:
            with contextlib.suppress(DatabaseError):
                close_old_connections()
            # Each step on its own: a payment provider outage or a database restart costs
            # that step this round, never the process or the other steps.
            released = _step("expiring holds", release_expired_holds)
            refunded = _step("refunding orphaned payments", payments_refund_orphaned)
            resolved = _step(
                "settling stale payments",
                lambda: payments_resolve_stale(
                    older_than=dt.timedelta(seconds=settings.PAYMENT_PENDING_TIMEOUT_SECONDS)
                ),
            )
            purged = _step("purging idempotency keys", idempotency_keys_purge)
            if released or refunded or resolved or purged:
                logger.info(
                    "sweeper: %s holds expired, %s refunds, %s stale payments settled, "
                    "%s idempotency keys purged",
                    released,
                    refunded,
                    resolved,
                    purged,
                )
            deadline = time.monotonic() + options["interval"]
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.2)


def _step(name: str, run: Callable[[], int]) -> int:
    try:
        return run()
    except DATABASE_AWAY as exc:
        # Not a bug: one line, not a traceback every round while PostgreSQL is away.
        logger.warning("sweeper: %s: the database is unavailable (%s); next round", name, exc)
        return 0
    except Exception:
        logger.exception("sweeper: %s failed; next round", name)
        return 0
