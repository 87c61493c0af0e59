"""Bounded growth (servicekit.retention): the outbox's sent messages pruned by the relay on
real PostgreSQL and NATS, in bounded batches, on a schedule, and a pruning that fails (a
real database error, from a trigger) costing the relay nothing. Run under the users
service's settings, which install the outbox app."""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from servicekit.bus import BusConfig, SyncBus, bus_config
from servicekit.messages import UserUpdated
from servicekit.outbox.models import OutboxMessage
from servicekit.outbox.relay import OutboxRelay, RelayOptions
from servicekit.outbox.services import outbox_emit, outbox_sent_prune
from servicekit.retention import Pruner, delete_older_than
from servicekit.testing import wait_until
from servicekit.workers import Worker

RETENTION = 3600


@pytest.fixture
def bus() -> Iterator[SyncBus]:
    suffix = uuid.uuid4().hex[:10]
    config = BusConfig(
        servers=bus_config().servers,
        stream=f"TEST_{suffix.upper()}",
        subject_prefix=f"test{suffix}",
        replicas=1,
    )
    client = SyncBus(config, name="tests")
    yield client
    try:
        client.connect()
        client.call(client.js.delete_stream(config.stream))
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _retention(settings: Any) -> None:
    settings.OUTBOX_SENT_RETENTION_SECONDS = RETENTION


def emit(count: int) -> list[OutboxMessage]:
    with transaction.atomic():
        return [
            outbox_emit(
                UserUpdated(
                    user_id=uuid.uuid4(), name=f"user {n}", email="a@example.com", role="customer"
                )
            )
            for n in range(count)
        ]


def sent(rows: list[OutboxMessage], *, seconds_ago: float) -> None:
    OutboxMessage.objects.filter(pk__in=[row.pk for row in rows]).update(
        sent_at=timezone.now() - dt.timedelta(seconds=seconds_ago)
    )


def remaining() -> set[int]:
    return set(OutboxMessage.objects.values_list("pk", flat=True))


@pytest.mark.django_db
def test_sent_messages_past_the_retention_go_the_others_stay() -> None:
    old, young, unsent, given_up = emit(3), emit(2), emit(1), emit(1)
    sent(old, seconds_ago=RETENTION + 60)
    sent(young, seconds_ago=RETENTION - 60)
    OutboxMessage.objects.filter(pk__in=[row.pk for row in unsent + given_up]).update(
        occurred_at=timezone.now() - dt.timedelta(days=30)
    )
    OutboxMessage.objects.filter(pk=given_up[0].pk).update(failed_at=timezone.now())

    assert outbox_sent_prune() == 3
    assert remaining() == {row.pk for row in young + unsent + given_up}
    assert outbox_sent_prune() == 0


@pytest.mark.django_db
def test_one_pruning_deletes_at_most_its_limit_oldest_first_in_bounded_batches() -> None:
    rows = emit(10)
    for n, row in enumerate(rows):  # sent in the order emitted, all past the retention
        sent([row], seconds_ago=RETENTION + 100 - n)
    with CaptureQueriesContext(connection) as queries:
        deleted = delete_older_than(
            OutboxMessage.objects.filter(sent_at__isnull=False),
            field="sent_at",
            cutoff=timezone.now() - dt.timedelta(seconds=RETENTION),
            limit=7,
            batch_size=3,
        )
    assert deleted == 7
    assert remaining() == {row.pk for row in rows[7:]}  # the three sent last
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3  # 3 + 3 + 1
    batches = [re.search(r"IN \(([^)]*)\)", sql) for sql in deletes]
    assert [len(match.group(1).split(",")) for match in batches if match] == [3, 3, 1]
    selects = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert [sql.rsplit("LIMIT", 1)[-1].strip() for sql in selects] == ["3", "3", "1"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_pruner_runs_at_most_once_an_interval_and_again_at_once_while_a_backlog_lasts() -> None:
    clock = Clock()
    backlog = [25]
    calls: list[int] = []

    def prune(limit: int) -> int:
        calls.append(limit)
        deleted = min(limit, backlog[0])
        backlog[0] -= deleted
        return deleted

    pruner = Pruner("things", prune, interval=60, limit=10, clock=clock)
    worker = Worker()
    assert [pruner.run(worker) for _ in range(4)] == [10, 10, 5, 0]  # a backlog: no waiting
    clock.now += 59
    assert pruner.run(worker) == 0
    assert len(calls) == 3
    clock.now += 1
    backlog[0] = 4
    assert pruner.run(worker) == 4
    assert pruner.deleted_total == 29


def test_a_pruning_that_fails_is_logged_and_tried_again_an_interval_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()

    def prune(limit: int) -> int:
        raise RuntimeError("boom")

    pruner = Pruner("things", prune, interval=60, clock=clock)
    with caplog.at_level(logging.ERROR):
        assert pruner.run(Worker()) == 0
    assert "worker: pruning things failed; next round" in caplog.text
    assert not pruner.due()
    clock.now += 60
    assert pruner.due()


FAIL_DELETES = """
CREATE FUNCTION outbox_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'deletes refused for this test'; END $$;
CREATE TRIGGER outbox_refuse_delete BEFORE DELETE ON outbox_messages
FOR EACH ROW EXECUTE FUNCTION outbox_refuse_delete();
"""
ALLOW_DELETES = """
DROP TRIGGER IF EXISTS outbox_refuse_delete ON outbox_messages;
DROP FUNCTION IF EXISTS outbox_refuse_delete();
"""


@pytest.mark.django_db(transaction=True)
def test_the_relay_prunes_and_a_failing_pruning_never_stops_its_publishing(
    bus: SyncBus, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.PRUNE_INTERVAL_SECONDS = 0.2
    old = emit(3)
    relay = OutboxRelay(bus, RelayOptions(poll_interval=0.1))
    assert relay.drain() == 3
    sent(old, seconds_ago=RETENTION + 1)
    with connection.cursor() as cursor:
        cursor.execute(FAIL_DELETES)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run, args=(stop,))
    try:
        with caplog.at_level(logging.INFO, logger="servicekit.outbox.relay"):
            thread.start()
            assert wait_until(lambda: "pruning sent messages failed" in caplog.text, 10)
            young = emit(2)
            assert wait_until(lambda: relay.published_total == 3 + 2, 10)
            assert thread.is_alive()
            assert remaining() == {row.pk for row in old + young}

            with connection.cursor() as cursor:
                cursor.execute(ALLOW_DELETES)
            assert wait_until(lambda: remaining() == {row.pk for row in young}, 10)
            assert "outbox relay: 3 sent messages pruned" in caplog.text
            assert "round failed" not in caplog.text
    finally:
        stop.set()
        thread.join(10)
        with connection.cursor() as cursor:
            cursor.execute(ALLOW_DELETES)
    assert not thread.is_alive()
