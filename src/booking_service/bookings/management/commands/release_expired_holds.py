from __future__ import annotations

import datetime as dt
import logging
import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from booking_service.bookings.services import release_expired_holds
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
            try:
                close_old_connections()
                released = release_expired_holds()
                refunded = payments_refund_orphaned()
                resolved = payments_resolve_stale(
                    older_than=dt.timedelta(seconds=settings.PAYMENT_PENDING_TIMEOUT_SECONDS)
                )
                purged = idempotency_keys_purge()
                if released or refunded or resolved or purged:
                    logger.info(
                        "sweeper: %s holds expired, %s refunds, %s stale payments settled, "
                        "%s idempotency keys purged",
                        released,
                        refunded,
                        resolved,
                        purged,
                    )
            except Exception:
                # A database restart or a payment provider outage is no reason to die: the
                # next round tries again.
                logger.exception("sweeper round failed")
            deadline = time.monotonic() + options["interval"]
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.2)
