"""The outbox relay against the real NATS server and PostgreSQL (run under the users service's
settings, which install the outbox app)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction

from devstack.nats import EmbeddedNats
from servicekit.bus import BusConfig, SyncBus, bus_config
from servicekit.messages import UserUpdated
from servicekit.outbox.health import check_outbox_lag
from servicekit.outbox.models import NEW_MESSAGE_ID_SQL, OutboxMessage, new_message_id
from servicekit.outbox.relay import OutboxRelay, RelayOptions
from servicekit.outbox.services import outbox_emit
from servicekit.testing import current_database_url, wait_until

SRC = Path(__file__).resolve().parents[2]


def _config(servers: tuple[str, ...] | None = None) -> BusConfig:
    suffix = uuid.uuid4().hex[:10]
    return BusConfig(
        servers=servers or bus_config().servers,
        stream=f"TEST_{suffix.upper()}",
        subject_prefix=f"test{suffix}",
        replicas=1,
    )


@pytest.fixture
def stream() -> Iterator[BusConfig]:
    config = _config()
    yield config
    cleanup = SyncBus(config, name="tests-cleanup")
    try:
        cleanup.connect()
        cleanup.call(cleanup.js.delete_stream(config.stream))
    finally:
        cleanup.close()


@pytest.fixture
def bus(stream: BusConfig) -> Iterator[SyncBus]:
    client = SyncBus(stream, name="tests")
    yield client
    client.close()


def emit(count: int) -> list[OutboxMessage]:
    with transaction.atomic():
        return [outbox_emit(_user_updated(name=f"user {n}")) for n in range(count)]


def _user_updated(name: str) -> UserUpdated:
    return UserUpdated(
        user_id=uuid.uuid4(), name=name, email="someone@example.com", role="customer"
    )


def stream_messages(bus: SyncBus) -> int:
    bus.connect()
    info = bus.call(bus.js.stream_info(bus.config.stream))
    return int(info.state.messages)


def stream_msg_ids(bus: SyncBus) -> list[str]:
    bus.connect()
    ids: list[str] = []
    for seq in range(1, stream_messages(bus) + 1):
        message = bus.call(bus.js.get_msg(bus.config.stream, seq))
        ids.append((message.headers or {})["Nats-Msg-Id"])
    return ids


@pytest.mark.django_db
def test_publishes_with_the_message_id_and_marks_sent(bus: SyncBus) -> None:
    rows = emit(5)
    relay = OutboxRelay(bus, RelayOptions(batch_size=2))
    assert relay.drain() == 5
    assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()
    assert stream_msg_ids(bus) == [str(row.message_id) for row in rows]
    assert check_outbox_lag().data["unsent"] == 0


@pytest.mark.django_db
def test_message_ids_are_uuid7_ordered_by_time_from_python_and_from_sql() -> None:
    """Time-ordered ids keep the unique index's inserts at its right edge. Python's (every
    outbox_emit) and the SQL expression's (the batched booking path) are RFC 9562 version 7
    with the clock's milliseconds, so they order with each other across milliseconds."""
    [emitted] = emit(1)
    before = new_message_id()
    time.sleep(0.003)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, uuid_extract_version(id), uuid_extract_timestamp(id), clock_timestamp()"  # noqa: S608
            f" FROM (SELECT {NEW_MESSAGE_ID_SQL} AS id FROM generate_series(1, 50)) AS made"
        )
        rows = cursor.fetchall()
    time.sleep(0.003)
    after = new_message_id()
    ids = [row[0] for row in rows]
    assert len(set(ids)) == 50
    assert {row[1] for row in rows} == {7}
    assert all(abs((row[3] - row[2]).total_seconds()) < 1 for row in rows)
    assert all(
        value.variant == uuid.RFC_4122 for value in [*ids, before, after, emitted.message_id]
    )
    assert (before.version, after.version, emitted.message_id.version) == (7, 7, 7)
    assert emitted.message_id < before < min(ids) <= max(ids) < after


@pytest.mark.django_db
def test_publishing_again_is_dropped_by_the_broker(bus: SyncBus) -> None:
    emit(3)
    relay = OutboxRelay(bus)
    relay.drain()
    # As if the relay died after the PubAck and before its commit.
    OutboxMessage.objects.update(sent_at=None)
    assert relay.drain() == 3
    assert stream_messages(bus) == 3


@pytest.mark.django_db
def test_bus_away_keeps_messages_pending_with_the_error() -> None:
    from servicekit.testing import free_port

    nobody = _config(servers=(f"nats://127.0.0.1:{free_port()}",))
    client = SyncBus(nobody, name="tests-unreachable")
    try:
        emit(2)
        relay = OutboxRelay(client, RelayOptions(publish_timeout=0.5))
        with pytest.raises(Exception, match=r"Timeout|timed out|Error"):
            relay.relay_batch()
    finally:
        client.close()
    for row in OutboxMessage.objects.all():
        assert row.sent_at is None
        assert row.attempts == 1
        assert row.last_error
    assert check_outbox_lag().data["unsent"] == 2


def _in_thread(target: Callable[[], Any]) -> threading.Thread:
    def run() -> None:
        try:
            target()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_several_relays_at_once_publish_each_message_once(bus: SyncBus) -> None:
    emit(300)
    relays = [OutboxRelay(bus, RelayOptions(batch_size=10)) for _ in range(3)]
    threads = [_in_thread(relay.drain) for relay in relays]
    for thread in threads:
        thread.join(60)
    assert sum(relay.published_total for relay in relays) == 300
    assert stream_messages(bus) == 300
    assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_listen_wakes_the_relay_without_waiting_for_the_poll(bus: SyncBus) -> None:
    relay = OutboxRelay(bus, RelayOptions(poll_interval=60))
    stop = threading.Event()
    thread = _in_thread(lambda: relay.run(stop))
    try:
        time.sleep(0.5)  # the relay is now waiting on LISTEN
        started = time.monotonic()
        emit(1)
        assert wait_until(lambda: relay.published_total == 1, 5, interval=0.02)
        assert time.monotonic() - started < 3
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive(), "the relay did not stop promptly"
    assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_messages_committed_while_it_lingers_go_out_in_one_batch(bus: SyncBus) -> None:
    relay = OutboxRelay(bus, RelayOptions(poll_interval=60, linger=1.0))
    batches: list[int] = []
    relay_batch = relay.relay_batch

    def counting_batch() -> int:
        published = relay_batch()
        if published:
            batches.append(published)
        return published

    relay.relay_batch = counting_batch  # type: ignore[method-assign]
    stop = threading.Event()
    thread = _in_thread(lambda: relay.run(stop))
    try:
        time.sleep(0.5)  # the relay is now waiting on LISTEN
        for _ in range(5):  # five transactions, five NOTIFYs, within the linger
            emit(1)
        assert wait_until(lambda: relay.published_total == 5, 10, interval=0.02)
    finally:
        stop.set()
        thread.join(10)
    assert batches == [5]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_broker_outage_outbox_grows_then_everything_is_delivered(tmp_path: Path) -> None:
    """NATS stopped while messages are written -> outbox grows -> NATS back -> all delivered."""
    nats = EmbeddedNats(tmp_path / "nats").start()
    config = _config(servers=(nats.url,))
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": current_database_url(),
            "NATS_URL": nats.url,
            "NATS_STREAM": config.stream,
            "NATS_SUBJECT_PREFIX": config.subject_prefix,
            "PYTHONPATH": str(SRC),
            "PYTHONUNBUFFERED": "1",
        }
    )
    log = (tmp_path / "relay.log").open("wb")
    relay = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "users_service",
            "outbox_relay",
            "--backoff-max",
            "1",
            "--publish-timeout",
            "1",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    bus = SyncBus(config, name="tests")
    try:
        emit(10)
        assert wait_until(lambda: check_outbox_lag().data["unsent"] == 0, 15), (
            tmp_path / "relay.log"
        ).read_text()

        nats.stop()
        for _ in range(4):
            emit(5)
            time.sleep(0.3)
        time.sleep(2)
        lag = check_outbox_lag().data
        assert lag["unsent"] == 20
        assert lag["oldest_unsent_age_seconds"] > 0.5

        nats.start()  # same port, same store
        assert wait_until(lambda: check_outbox_lag().data["unsent"] == 0, 30), (
            tmp_path / "relay.log"
        ).read_text()
        assert relay.poll() is None
        ids = stream_msg_ids(bus)
        assert len(ids) == 30
        assert sorted(ids) == sorted(
            str(message_id)
            for message_id in OutboxMessage.objects.values_list("message_id", flat=True)
        )
        assert "bus unavailable" in (tmp_path / "relay.log").read_text()
    finally:
        relay.terminate()
        relay.wait(15)
        log.close()
        bus.close()
        nats.stop()


def _too_large() -> OutboxMessage:
    """A message the broker refuses while it takes every other: over its 1 MB payload limit."""
    with transaction.atomic():
        return outbox_emit(_user_updated(name="x" * 2_000_000))


@pytest.mark.django_db
def test_a_message_the_broker_refuses_fails_alone_then_is_given_up(bus: SyncBus) -> None:
    before = emit(1)
    refused = _too_large()
    after = emit(2)
    relay = OutboxRelay(
        bus, RelayOptions(batch_size=10, max_attempts=2, retry_initial=1.0, retry_max=1.0)
    )
    assert relay.relay_batch() == 3  # no outage raised: the broker took the others
    assert stream_msg_ids(bus) == [str(row.message_id) for row in [*before, *after]]
    refused.refresh_from_db()
    assert refused.sent_at is None
    assert refused.failed_at is None
    assert refused.attempts == 1
    assert "MaxPayload" in refused.last_error
    assert refused.next_attempt_at is not None
    assert relay.relay_batch() == 0  # not due yet: the next batch goes on without it

    time.sleep(1.1)
    later = emit(1)
    assert relay.relay_batch() == 1
    refused.refresh_from_db()
    assert refused.attempts == 2
    assert refused.failed_at is not None  # given up, kept with its error
    assert "MaxPayload" in refused.last_error
    time.sleep(1.1)
    assert relay.relay_batch() == 0
    assert stream_msg_ids(bus)[-1] == str(later[0].message_id)
    lag = check_outbox_lag().data
    assert (lag["unsent"], lag["failed"]) == (0, 1)


@pytest.mark.django_db(transaction=True)
def test_a_refused_message_does_not_slow_the_relay_loop(bus: SyncBus) -> None:
    _too_large()
    # Were the refusal taken for an outage, the loop would back off 5 s after every batch.
    relay = OutboxRelay(bus, RelayOptions(poll_interval=0.2, backoff_initial=5, retry_initial=60))
    stop = threading.Event()
    thread = _in_thread(lambda: relay.run(stop))

    def published(count: int) -> bool:
        return wait_until(lambda: relay.published_total == count, 2, interval=0.02)

    try:
        for expected in (2, 4, 6):
            emit(2)
            assert published(expected)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert OutboxMessage.objects.filter(sent_at__isnull=True).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_batch_that_cannot_be_encoded_does_not_stop_the_relay(
    bus: SyncBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    from servicekit.outbox import relay as relay_module

    [poison] = emit(1)
    real_envelope_bytes = relay_module.envelope_bytes

    def envelope_bytes(row: Any) -> bytes:
        if row.pk == poison.pk:
            raise TypeError("Object of type Decimal is not JSON serializable")
        return real_envelope_bytes(row)

    monkeypatch.setattr(relay_module, "envelope_bytes", envelope_bytes)
    relay = OutboxRelay(bus, RelayOptions(poll_interval=0.2, retry_initial=60))
    stop = threading.Event()
    thread = _in_thread(lambda: relay.run(stop))
    try:
        emit(3)
        assert wait_until(lambda: relay.published_total == 3, 5, interval=0.02)
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(10)
    poison.refresh_from_db()
    assert poison.sent_at is None
    assert poison.attempts == 1
    assert poison.last_error == "TypeError: Object of type Decimal is not JSON serializable"
