"""`python -m booking_service release_expired_holds [--loop]`: the sweeper."""

from __future__ import annotations

import contextlib
import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, close_old_connections

from booking_service.actions.sweeper import release_expired_holds, sweep_round


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
            sweep_round()
            deadline = time.monotonic() + options["interval"]
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.2)
