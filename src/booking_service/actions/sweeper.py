"""The sweeper's rounds: expired holds go back on sale, payments left unsettled or
unrefunded by a crash are settled, old Idempotency-Key records go.

Each step on its own (the worker's `step`): a payment provider outage or a database
restart costs that step this round, never the process or the other steps. Inside a step,
one bad item never stops the others: holds that fail to be released together are released
one at a time, and the one that still fails is logged and left for the next round.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from booking_service.actions.payments import payments_refund_orphaned, payments_resolve_stale
from booking_service.bookings import inventory
from servicekit.idempotency.services import idempotency_keys_purge
from servicekit.workers import DATABASE_AWAY

logger = logging.getLogger(__name__)


def release_expired_holds(*, now: dt.datetime | None = None) -> int:
    """Expire every ended hold (`cancel_reason="expired"`), event by event, then slot holds,
    and return their inventory. Returns how many bookings expired."""
    now = now or timezone.now()
    released = 0
    event_ids = (
        inventory.expired_holds(now=now)
        .filter(event__isnull=False)
        .values_list("event_id", flat=True)
        .distinct()
    )
    for event_id in list(event_ids):
        if event_id is None:
            continue
        try:
            released += inventory.release_event_holds(event_id=event_id, now=now)
        except DATABASE_AWAY:
            raise
        except Exception:
            logger.exception("sweeper: holds of event %s failed; one at a time", event_id)
            for booking_id in _expired_ids(now=now, event_id=event_id):
                released += _release_one(now=now, booking_id=booking_id, event_id=event_id)
    try:
        released += inventory.release_slot_holds(now=now)
    except DATABASE_AWAY:
        raise
    except Exception:
        logger.exception("sweeper: slot holds failed; one at a time")
        for booking_id in _expired_ids(now=now, event_id=None):
            released += _release_one(now=now, booking_id=booking_id, event_id=None)
    return released


def _expired_ids(*, now: dt.datetime, event_id: int | None) -> list[int]:
    expired = inventory.expired_holds(now=now)
    if event_id is None:
        expired = expired.filter(resource__isnull=False)
    else:
        expired = expired.filter(event_id=event_id)
    return list(expired.order_by("id").values_list("id", flat=True))


def _release_one(*, now: dt.datetime, booking_id: int, event_id: int | None) -> int:
    try:
        if event_id is None:
            return inventory.release_slot_holds(now=now, booking_id=booking_id)
        return inventory.release_event_holds(event_id=event_id, now=now, booking_id=booking_id)
    except DATABASE_AWAY:
        raise
    except Exception:
        logger.exception("sweeper: hold %s could not be released; next round", booking_id)
        return 0


# How a round runs one step on its own: the worker's `step` (a failure is logged and the
# step counts 0), given the step's name and its function.
StepRunner = Callable[[str, Callable[[], int]], int]


@dataclass(frozen=True)
class SweepResult:
    released: int
    refunded: int
    settled: int
    purged: int


def sweep_round(step: StepRunner) -> SweepResult:
    """One round of the sweeper, every step on its own."""
    older_than = dt.timedelta(seconds=settings.PAYMENT_PENDING_TIMEOUT_SECONDS)
    result = SweepResult(
        released=step("expiring holds", release_expired_holds),
        refunded=step("refunding orphaned payments", payments_refund_orphaned),
        settled=step(
            "settling stale payments", lambda: payments_resolve_stale(older_than=older_than)
        ),
        purged=step("purging idempotency keys", idempotency_keys_purge),
    )
    if result.released or result.refunded or result.settled or result.purged:
        logger.info(
            "sweeper: %s holds expired, %s refunds, %s stale payments settled, "
            "%s idempotency keys purged",
            result.released,
            result.refunded,
            result.settled,
            result.purged,
        )
    return result
