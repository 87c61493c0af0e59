"""The verdict on a chaos run: the history against what the databases, mailbox and webhook
log hold once the system has healed.

`check(topology, history_path)` first waits (up to `heal_timeout`) until nothing is left in
flight: no booking `pending` (every hold paid, canceled or released by the sweeper) and no
payment `pending` (settled with the provider), no successful payment of a canceled booking
left unrefunded, the users and booking outboxes drained, every notifications consumer
caught up (JetStream: `num_pending` and `num_ack_pending` 0), no email or webhook delivery
still waiting for an attempt. The conditions are read upstream first (bookings, outboxes,
the stream, deliveries) and must hold twice in a row. What never heals is a violation.

Then, one sentence per violation, naming ids:

Inventory (every event and resource in the database)
- no event oversold: `available_tickets >= 0` and the tickets of pending and confirmed
  bookings at most `total_tickets`;
- conservation: `total_tickets = available + held (pending) + sold (confirmed)`;
- no two pending or confirmed bookings of one resource overlap;
- a canceled event has no pending or confirmed booking.

Acknowledged operations (the run's own users; `ok` completions)
- every booking an answer named exists, is the caller's, for the event or the slot asked;
- every payment an answer named exists, of that booking; a 201 is `success` (`refunded` if
  its booking is canceled now), a 402 `failed`, a 409 `hold-expired` `refunded`;
- a booking whose cancel was acknowledged is canceled; a change acknowledged sets
  `tickets_booked`, unless a later change's outcome is unknown (either value then);
- a confirmed booking has exactly one `success` payment; a `success` payment's booking is
  confirmed; a canceled booking has none left unrefunded;
- nothing happens unasked: a booking canceled with `reason: user` had a cancel request, a
  confirmed booking a payment request, one canceled with its event a canceled event;
- an event's `total_tickets` is what the last acknowledged change set (or an unknown
  change after it); an event a cancel was acknowledged for is canceled; an event creation
  (no key: an unknown one may have happened or not) made at most one event (by its name);
- no answer was a server error: a failure of the server is a 503 problem with Retry-After
  (transient, safe to retry with the key), never a 500.

One effect per key (`Idempotency-Key`, recorded with the change it stands for)
- every booking of the run's customers is named by exactly one key record
  (`idempotency_keys.response_body.id` of `POST bookings.create`): the booking and its
  key's answer commit together, so a booking no record names was made by a request whose
  key was lost, and a retry of that key made another one (the key had two effects);
- every payment is named by exactly one key record (its `recovery_point.payment`, or the
  answer's `id` or `payment.id`);
- every answer a key got (first or replayed) names the one booking or payment its record
  names. Unknown operations are always retried with their key, so these rules cover them.

Messages (facts from the database state: a confirmed booking, a booking canceled by its
user or an admin, an expired hold, an event canceled under a booking, a payment succeeded,
failed or refunded, a registered user). For each fact of the run's users:
- exactly one outbox message about it (`payment.succeeded` per booking: one if it was ever
  confirmed, else none);
- exactly one notification to its user;
- exactly one email, counted by distinct `Message-ID` (a copy resent under the same id is
  allowed: mail is at least once), addressed to the user's address;
- for each message about the run organizers' events, one webhook delivery per matching
  active endpoint, `succeeded`, and at least one request in the webhook log with its
  `Turnstile-Delivery-Id` and `Turnstile-Event-Id`.

Dead letters (those written since the run started): exactly one per consumer named in each
injected poison (found by the poison's id in the payload), and no other.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psycopg

from devstack.chaos.checker.case import Case
from devstack.chaos.checker.healing import DURABLES, wait_healed
from devstack.chaos.checker.inventory import events_and_resources
from devstack.chaos.checker.keys import one_effect_per_key
from devstack.chaos.checker.messages import dead_letters, facts_told_once, webhooks
from devstack.chaos.checker.operations import (
    acknowledged_bookings,
    acknowledged_payments,
    booking_payment_agreement,
    events_as_acknowledged,
    server_errors_are_retryable,
)
from devstack.chaos.checker.verdict import Verdict
from devstack.chaos.checker.world import Run, World
from devstack.chaos.history import load
from devstack.chaos.topology import Topology

__all__ = ["DURABLES", "Verdict", "check"]

# In the order of the list above, which is the order of a verdict's sentences.
RULES: tuple[Callable[[Case], None], ...] = (
    events_and_resources,
    acknowledged_bookings,
    acknowledged_payments,
    booking_payment_agreement,
    events_as_acknowledged,
    server_errors_are_retryable,
    one_effect_per_key,
    facts_told_once,
    webhooks,
    dead_letters,
)


def _stats(run: Run) -> dict[str, Any]:
    operations: dict[str, Counter[str]] = defaultdict(Counter)
    for op in run.ops:
        operations[op.f][op.type] += 1
    faults: Counter[str] = Counter()
    for entry in run.entries:
        if entry.get("process") == "nemesis":
            phase = (entry.get("value") or {}).get("phase")
            if phase in (None, "start"):
                faults[str(entry["f"])] += 1
    return {
        "operations": {f: dict(counts) for f, counts in operations.items()},
        "faults": dict(faults),
        "customers": len(run.customers),
        "organizers": len(run.organizers),
    }


def _poison_ops(run: Run, injected: Iterable[str] | None) -> list[dict[str, Any]]:
    found = [{**op.request, "type": op.type, **op.result} for op in run.ops if op.f == "poison"]
    if injected is None:
        return found
    wanted = set(injected)
    from devstack.chaos.workload import POISON_CONSUMERS

    known = {str(p["msg_id"]): p for p in found}
    return [
        known.get(msg_id, {"msg_id": msg_id, "consumers": list(POISON_CONSUMERS), "type": "ok"})
        for msg_id in sorted(wanted)
    ]


def check(
    topology: Topology,
    history_path: Path,
    *,
    heal_timeout: float = 120.0,
    injected_poison: Iterable[str] | None = None,
) -> Verdict:
    """Wait until the system has healed, then judge the run. `injected_poison`: the ids of
    the poison messages put on the bus on purpose (default: the history's `poison` ops)."""
    run = Run.read(load(history_path))
    stats = _stats(run)
    seconds, waiting = wait_healed(topology, run, timeout=heal_timeout)
    stats["time_to_heal"] = None if seconds is None else round(seconds, 1)
    violations = [f"not healed after {heal_timeout:.0f} s: {reason}" for reason in waiting]
    try:
        world = World.read(topology, run)
    except psycopg.Error as exc:
        return Verdict([*violations, f"the databases could not be read: {exc}"], stats)
    case = Case(run, world, _poison_ops(run, injected_poison))
    for rule in RULES:
        rule(case)
    violations += case.violations
    stats.update(
        bookings=len(case.run_bookings),
        payments=len(case.run_payments),
        notifications=len(world.notifications),
        emails=len(world.emails),
        resent_emails=case.resent_emails,
        webhook_deliveries=len(world.deliveries),
        webhook_requests=len(world.webhook_log),
        dead_letters=len(world.dead_letters),
    )
    return Verdict(violations, stats)
