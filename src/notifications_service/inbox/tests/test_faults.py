"""Faults with real processes: the broker stopped while producers write, the consumer killed
with SIGKILL in the middle of a stream. Nothing is lost and nothing is doubled."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from devstack.nats import EmbeddedNats
from notifications_service.inbox.models import ProcessedMessage
from notifications_service.notifications.models import EmailDelivery, Notification
from notifications_service.testing import (
    database_url_for,
    envelope,
    process_env,
    publish,
    start_process,
    stop_process,
    unique_bus_config,
)
from servicekit.bus import BusConfig, SyncBus
from servicekit.messages.examples import example_data
from servicekit.testing import current_database_url, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _confirmed_data(n: int) -> dict[str, Any]:
    return example_data(
        "booking.confirmed",
        booking_id=n,
        user_id=str(uuid.uuid4()),
        event_id=1,
        event_name="Gig",
        tickets_booked=1,
        amount="10.00",
    )


def _log(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_consumer_killed_mid_stream_makes_every_notification_exactly_once(
    bus: SyncBus, bus_stream: BusConfig, tmp_path: Path
) -> None:
    total = 600
    for n in range(total):
        publish(bus, envelope("booking.confirmed", _confirmed_data(n)))
    env = process_env(
        bus_stream,
        DATABASE_URL=current_database_url(),
        NOTIFICATIONS_CONSUMER_ACK_WAIT_SECONDS="2",
        NOTIFICATIONS_CONSUMER_BATCH="10",
    )
    log = tmp_path / "consumer.log"
    args = ["consume_events", "--consumer", "notifications"]
    consumer = start_process("notifications_service", args, env, log)
    try:
        assert wait_until(lambda: Notification.objects.count() >= 50, 60, interval=0.01), _log(log)
        consumer.send_signal(signal.SIGKILL)
        consumer.wait(10)
        assert consumer.returncode == -signal.SIGKILL
        seen_at_kill = Notification.objects.count()
        assert seen_at_kill < total, "the consumer finished before it could be killed"

        consumer = start_process("notifications_service", args, env, log)
        assert wait_until(lambda: Notification.objects.count() >= total, 90), _log(log)
        # Give redeliveries of the killed process's unacked messages time to arrive.
        info_ok = wait_until(lambda: _consumer_idle(bus, "notifications-notify"), 30, interval=0.5)
        assert info_ok, _log(log)
    finally:
        stop_process(consumer)
    assert Notification.objects.count() == total
    assert Notification.objects.values("source_message_id").distinct().count() == total
    assert ProcessedMessage.objects.filter(consumer="notifications").count() == total
    assert EmailDelivery.objects.count() == total


def test_two_consumer_processes_share_the_stream_without_doubling(
    bus: SyncBus, bus_stream: BusConfig, tmp_path: Path
) -> None:
    total = 300
    for n in range(total):
        publish(bus, envelope("booking.confirmed", _confirmed_data(n)))
    env = process_env(
        bus_stream, DATABASE_URL=current_database_url(), NOTIFICATIONS_CONSUMER_BATCH="5"
    )
    args = ["consume_events", "--consumer", "notifications"]
    logs = [tmp_path / "consumer-1.log", tmp_path / "consumer-2.log"]
    consumers = [start_process("notifications_service", args, env, log) for log in logs]
    try:
        assert wait_until(lambda: Notification.objects.count() >= total, 60), _log(logs[0])
        assert wait_until(lambda: _consumer_idle(bus, "notifications-notify"), 30)
    finally:
        for consumer in consumers:
            stop_process(consumer)
    assert Notification.objects.count() == total
    assert Notification.objects.values("source_message_id").distinct().count() == total
    handled = [
        int(line.split("stopped: ")[1].split(" handled")[0])
        for log in logs
        for line in _log(log).splitlines()
        if "consumer notifications stopped" in line
    ]
    assert sum(handled) == total
    assert all(count > 0 for count in handled), handled  # both did part of the work


def test_database_connections_killed_under_the_consumer_lose_nothing(
    bus: SyncBus, bus_stream: BusConfig, tmp_path: Path
) -> None:
    from django.db import connection

    total = 400
    for n in range(total):
        publish(bus, envelope("booking.confirmed", _confirmed_data(n)))
    env = process_env(
        bus_stream,
        DATABASE_URL=current_database_url(),
        NOTIFICATIONS_CONSUMER_BATCH="5",
        NOTIFICATIONS_CONSUMER_ACK_WAIT_SECONDS="3",
    )
    log = tmp_path / "consumer.log"
    consumer = start_process(
        "notifications_service", ["consume_events", "--consumer", "notifications"], env, log
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        own_pid = cursor.fetchone()[0]
    killed = 0
    try:
        for threshold in (50, 150, 250):

            def reached(threshold: int = threshold) -> bool:
                return Notification.objects.count() >= threshold

            assert wait_until(reached, 60), _log(log)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> %s",
                    [own_pid],
                )
                killed += cursor.fetchone()[0]
        assert wait_until(lambda: Notification.objects.count() >= total, 90), _log(log)
        assert wait_until(lambda: _consumer_idle(bus, "notifications-notify"), 30), _log(log)
        assert consumer.poll() is None
    finally:
        stop_process(consumer)
    assert killed >= 3
    assert Notification.objects.count() == total
    assert Notification.objects.values("source_message_id").distinct().count() == total
    assert "database error" in _log(log) or "consumer notifications:" in _log(log)


def _consumer_idle(bus: SyncBus, durable: str) -> bool:
    info = bus.consumer_info(durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


@pytest.fixture
def producer_database() -> Iterator[str]:
    """A database of its own holding a producer's outbox (the users service's schema)."""
    name = f"producer_{uuid.uuid4().hex[:8]}"
    server = database_url_for("postgres")
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = database_url_for(name)
    try:
        yield url
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _write_outbox(database_url: str, count: int) -> list[str]:
    """As the booking service does: outbox rows committed with the change, then NOTIFY."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    with psycopg.connect(database_url) as conn:
        for n, message_id in enumerate(ids):
            conn.execute(
                "INSERT INTO outbox_messages"
                " (message_id, type, producer, version, occurred_at, data, attempts, last_error)"
                " VALUES (%s, 'booking.confirmed', 'booking', 1, %s, %s, 0, '')",
                [message_id, datetime.now(UTC), json.dumps(_confirmed_data(n))],
            )
        conn.execute("SELECT pg_notify('outbox', '')")
    return ids


def _unsent(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM outbox_messages WHERE sent_at IS NULL").fetchone()
    assert row is not None
    return int(row[0])


def test_broker_stopped_while_messages_are_written_delivers_everything_once(
    producer_database: str, tmp_path: Path
) -> None:
    nats = EmbeddedNats(tmp_path / "nats").start()
    config = unique_bus_config()
    config = BusConfig(
        servers=(nats.url,),
        stream=config.stream,
        subject_prefix=config.subject_prefix,
        replicas=1,
    )
    producer_env = process_env(
        config, DATABASE_URL=producer_database, DJANGO_SETTINGS_MODULE="users_service.settings"
    )
    subprocess.run(
        [sys.executable, "-m", "users_service", "migrate", "-v", "0"], env=producer_env, check=True
    )
    consumer_env = process_env(
        config, DATABASE_URL=current_database_url(), NOTIFICATIONS_CONSUMER_ACK_WAIT_SECONDS="3"
    )
    relay_log, consumer_log = tmp_path / "relay.log", tmp_path / "consumer.log"
    relay = start_process(
        "users_service",
        ["outbox_relay", "--publish-timeout", "1", "--backoff-max", "1"],
        producer_env,
        relay_log,
    )
    consumer = start_process(
        "notifications_service", ["consume_events"], consumer_env, consumer_log
    )
    logs = lambda: _log(relay_log) + _log(consumer_log)  # noqa: E731
    try:
        written = _write_outbox(producer_database, 10)
        assert wait_until(lambda: Notification.objects.count() == 10, 30), logs()

        nats.stop()
        for _ in range(4):
            written += _write_outbox(producer_database, 5)
        assert wait_until(lambda: _unsent(producer_database) == 20, 10), logs()
        assert Notification.objects.count() == 10  # nothing got through meanwhile

        nats.start()  # same port, same store
        assert wait_until(lambda: Notification.objects.count() >= 30, 60), logs()
        assert wait_until(lambda: _unsent(producer_database) == 0, 30), logs()
        assert relay.poll() is None
        assert consumer.poll() is None
    finally:
        stop_process(relay)
        stop_process(consumer)
        nats.stop()
    assert Notification.objects.count() == 30
    assert sorted(
        str(n) for n in Notification.objects.values_list("source_message_id", flat=True)
    ) == sorted(written)


def test_the_consumer_process_dead_letters_bad_messages_and_handles_the_rest(
    bus: SyncBus, bus_stream: BusConfig, tmp_path: Path
) -> None:
    from notifications_service.inbox.models import DeadLetter

    bus.publish(message_type="booking.confirmed", payload=b"\x00not json", msg_id="nul")
    unreadable = envelope("booking.confirmed", {"booking_id": 1})  # no user_id: poison
    publish(bus, unreadable)
    total = 20
    for n in range(total):
        publish(bus, envelope("booking.confirmed", _confirmed_data(n)))
    env = process_env(
        bus_stream,
        DATABASE_URL=current_database_url(),
        NOTIFICATIONS_CONSUMER_MAX_DELIVER="2",
        NOTIFICATIONS_CONSUMER_ACK_WAIT_SECONDS="30",
        DELIVERY_RETRY_BASE_SECONDS="0.1",
    )
    log = tmp_path / "consumer.log"
    consumer = start_process(
        "notifications_service", ["consume_events", "--consumer", "notifications"], env, log
    )
    try:
        assert wait_until(lambda: Notification.objects.count() == total, 30), _log(log)
        assert wait_until(lambda: DeadLetter.objects.count() == 2, 30), _log(log)
        assert wait_until(lambda: _consumer_idle(bus, "notifications-notify"), 10), _log(log)
        assert consumer.poll() is None, _log(log)
    finally:
        stop_process(consumer)
    letters = {letter.message_id: letter for letter in DeadLetter.objects.all()}
    # Data that does not match its model is poison: dead-lettered at its first delivery.
    assert letters[unreadable["id"]].deliveries == 1
    assert "missing required field `user_id`" in letters[unreadable["id"]].error
    assert letters[""].payload == "\\x00not json"
