"""The sweeper's purge of expired `Idempotency-Key` records, on real PostgreSQL: expired keys
go, oldest first and at most a step's limit at once; live keys stay; a round does it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from django.utils import timezone

from booking_service.actions.sweeper import sweep_round
from servicekit.idempotency.models import IdempotencyKey
from servicekit.idempotency.services import idempotency_keys_purge

pytestmark = pytest.mark.django_db


def key(name: str, *, expires_in: float) -> IdempotencyKey:
    now = timezone.now()
    return IdempotencyKey.objects.create(
        owner="u1",
        endpoint="POST /api/bookings/",
        key=name,
        request_fingerprint="f",
        response_status=201,
        response_body={},
        created_at=now,
        expires_at=now + dt.timedelta(seconds=expires_in),
    )


def keys() -> set[str]:
    return set(IdempotencyKey.objects.values_list("key", flat=True))


def test_expired_keys_go_oldest_first_at_most_the_limit_live_keys_stay() -> None:
    for n in range(5):
        key(f"expired-{n}", expires_in=-100 + n)
    key("live", expires_in=60)
    assert idempotency_keys_purge(limit=3) == 3
    assert keys() == {"expired-3", "expired-4", "live"}
    assert idempotency_keys_purge() == 2
    assert keys() == {"live"}


def test_a_sweeper_round_purges_expired_keys() -> None:
    key("expired", expires_in=-1)
    key("live", expires_in=60)

    def step(what: str, run: Callable[[], int]) -> int:
        return run()

    assert sweep_round(step).purged == 1
    assert keys() == {"live"}
