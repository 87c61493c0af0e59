"""`seed_demo --context '<json>'`: the stack's demo data step. The web service keeps no data
but sessions; it reports where its pages are, as the last line of its output."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Demo data for the development stack (prints one JSON line)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--context", default="{}")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(json.dumps({}))
