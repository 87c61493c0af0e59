"""The run under judgement: the history and the world, indexed by id, and the violations
found so far. Every rule reads it and says what broke."""

from __future__ import annotations

from typing import Any

from devstack.chaos.checker.world import Run, World
from devstack.chaos.history import Pair


class Case:
    def __init__(self, run: Run, world: World, poison: list[dict[str, Any]]) -> None:
        self.run = run
        self.world = world
        self.poison = poison
        self.violations: list[str] = []
        self.resent_emails = 0
        self.bookings = {int(b["id"]): b for b in world.bookings}
        self.payments = {int(p["id"]): p for p in world.payments}
        self.events = {int(e["id"]): e for e in world.events}
        self.run_bookings = {
            i: b for i, b in self.bookings.items() if str(b["user_id"]) in run.customers
        }
        self.run_payments = {
            i: p for i, p in self.payments.items() if str(p["user_id"]) in run.customers
        }

    def say(self, sentence: str) -> None:
        self.violations.append(sentence)

    def ops(self, f: str) -> list[Pair]:
        return [op for op in self.run.ops if op.f == f]
