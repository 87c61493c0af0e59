"""`python -m <service> worker_health <command> [--max-age S]`: exit 0 when that worker of
this service beat within S seconds, 1 otherwise; for a container's exec probe."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from servicekit.workers import heartbeat_age, heartbeat_path


class Command(BaseCommand):
    help = (
        "Exit 0 if the worker (named by its command, e.g. outbox_relay) beat within --max-age "
        "seconds, else 1. Needs WORKER_HEARTBEAT_DIR, as the worker has."
    )
    # A probe runs it every few seconds: no system checks, no database.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the worker's command: outbox_relay, consume_events, ...")
        parser.add_argument(
            "--max-age",
            type=float,
            default=60.0,
            help="seconds; longer than the worker's longest round (default 60)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name, max_age = options["name"], options["max_age"]
        path = heartbeat_path(name)
        if path is None:
            raise CommandError("WORKER_HEARTBEAT_DIR is not set: workers write no heartbeat")
        age = heartbeat_age(name)
        if age is None:
            raise CommandError(f"{name}: no heartbeat at {path}")
        if age > max_age:
            raise CommandError(f"{name}: last heartbeat {age:.1f}s ago, more than {max_age:g}s")
        self.stdout.write(f"{name}: last heartbeat {age:.1f}s ago")
