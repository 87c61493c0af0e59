"""`python -m <service> outbox_relay`: publish the service's outbox to JetStream."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from servicekit.bus import SyncBus
from servicekit.outbox.relay import OutboxRelay, RelayOptions
from servicekit.workers import stop_on_signals


class Command(BaseCommand):
    help = "Publish pending outbox events to NATS JetStream (any number of instances may run)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=100)
        parser.add_argument(
            "--poll-interval",
            type=float,
            default=5.0,
            help="seconds between polls when no NOTIFY arrives",
        )
        parser.add_argument("--backoff-max", type=float, default=10.0)
        parser.add_argument(
            "--publish-timeout", type=float, default=5.0, help="seconds to wait for a PubAck"
        )
        parser.add_argument("--lag-log-interval", type=float, default=30.0)
        parser.add_argument(
            "--linger",
            type=float,
            default=0.02,
            help="seconds to gather more events after a NOTIFY before publishing",
        )
        parser.add_argument(
            "--once", action="store_true", help="publish what is pending, then exit"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from django.conf import settings

        relay_options = RelayOptions(
            batch_size=options["batch_size"],
            poll_interval=options["poll_interval"],
            backoff_max=options["backoff_max"],
            publish_timeout=options["publish_timeout"],
            lag_log_interval=options["lag_log_interval"],
            linger=options["linger"],
        )
        bus = SyncBus(name=f"{settings.SERVICE_NAME}-outbox-relay")
        relay = OutboxRelay(bus, relay_options)
        try:
            if options["once"]:
                published = relay.drain()
                self.stdout.write(f"published {published} events")
                return
            relay.run(stop_on_signals())
        finally:
            bus.close()
