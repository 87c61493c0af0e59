"""`python -m notifications_service dead_letters [--retry ID ... | --retry-all]`.

Lists the messages consumers gave up on; after the cause is fixed, runs them through their
consumer's handler again (still once per message: an id already handled is skipped).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications_service.inbox.registry import consumer_specs
from notifications_service.inbox.selectors import dead_letter_list
from notifications_service.inbox.services import dead_letter_retry


class Command(BaseCommand):
    help = "List dead-lettered messages, or retry them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--consumer", default=None)
        parser.add_argument("--retry", type=int, nargs="+", default=[], metavar="ID")
        parser.add_argument("--retry-all", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        letters = dead_letter_list(consumer=options["consumer"])
        handlers = {spec.name: spec.handler for spec in consumer_specs()}
        if not options["retry"] and not options["retry_all"]:
            for letter in letters:
                error = letter.error.strip().splitlines()[-1] if letter.error.strip() else ""
                self.stdout.write(
                    f"{letter.pk}\t{letter.created_at:%Y-%m-%d %H:%M:%S}\t{letter.consumer}\t"
                    f"{letter.message_type or letter.subject}\t{letter.message_id}\t"
                    f"deliveries={letter.deliveries}\t{error}"
                )
            return
        chosen = list(letters if options["retry_all"] else letters.filter(pk__in=options["retry"]))
        missing = set(options["retry"]) - {letter.pk for letter in chosen}
        if missing:
            raise CommandError(f"no dead letters {sorted(missing)}")
        retried = failed = 0
        for letter in chosen:
            handler = handlers.get(letter.consumer)
            if handler is None:
                self.stderr.write(f"{letter.pk}: consumer {letter.consumer!r} no longer exists")
                failed += 1
            elif dead_letter_retry(dead_letter=letter, handler=handler):
                retried += 1
            else:
                self.stderr.write(f"{letter.pk}: {letter.error}")
                failed += 1
        self.stdout.write(f"retried {retried}, still failing {failed}")
        if failed:
            raise CommandError("some dead letters still fail")
