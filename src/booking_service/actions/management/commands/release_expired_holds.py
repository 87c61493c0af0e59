"""`python -m booking_service release_expired_holds [--loop]`: the sweeper."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from booking_service.actions.sweeper import release_expired_holds, sweep_round
from servicekit.workers import Worker, stop_on_signals


class Sweeper(Worker):
    """A round every `interval` seconds; each step of it on its own."""

    name = "release_expired_holds"
    label = "sweeper"

    def __init__(self, *, interval: float) -> None:
        self.idle_interval = interval

    def round(self) -> bool:
        sweep_round(lambda what, run: self.step(what, run, 0))
        return False


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
        Sweeper(interval=options["interval"]).run(stop_on_signals())
