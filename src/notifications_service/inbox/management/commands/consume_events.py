"""`python -m notifications_service consume_events`: run the durable bus consumers."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications_service.inbox.consumer import run_consumers
from notifications_service.inbox.registry import consumer_options, consumer_specs
from servicekit.bus import SyncBus
from servicekit.workers import stop_on_signals


class Command(BaseCommand):
    help = "Consume domain events from NATS JetStream (any number of instances may run)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--consumer",
            action="append",
            default=[],
            help="run only this consumer (repeatable); default: all",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        specs = consumer_specs()
        if options["consumer"]:
            unknown = set(options["consumer"]) - {spec.name for spec in specs}
            if unknown:
                raise CommandError(f"unknown consumers {sorted(unknown)}")
            specs = [spec for spec in specs if spec.name in options["consumer"]]
        stop = stop_on_signals()
        bus = SyncBus(name="notifications-consumer")
        try:
            run_consumers(bus, specs, consumer_options(), stop)
        finally:
            bus.close()
