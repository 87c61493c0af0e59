"""The chaos checker can fail: small histories and database states, built by hand in real
databases (the three services' schemas, migrated), each breaking one guarantee."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nats
import psycopg
import pytest
from nats.js import api
from psycopg.types.json import Jsonb

from devstack.chaos.checker import DURABLES, Verdict, check
from devstack.chaos.history import History
from devstack.chaos.topology import Topology

SERVICES = {"users": "users_service", "booking": "booking_service"}
SERVICES["notifications"] = "notifications_service"
NOW = dt.datetime.now(dt.UTC)


def _migrate(name: str, url: str) -> None:
    env = dict(os.environ, DATABASE_URL=url, DJANGO_SETTINGS_MODULE=f"{SERVICES[name]}.settings")
    subprocess.run(
        [sys.executable, "-m", SERVICES[name], "migrate", "--noinput", "-v", "0"],
        env=env,
        check=True,
    )


@pytest.fixture(scope="module")
def database_urls() -> Iterator[dict[str, str]]:
    server = os.environ["TURNSTILE_TEST_POSTGRES_URL"]
    prefix = f"chaos_{secrets.token_hex(4)}"
    urls = {}
    with psycopg.connect(server, autocommit=True) as conn:
        for name in SERVICES:
            conn.execute(f"CREATE DATABASE {prefix}_{name}")
            urls[name] = server.replace("/postgres?", f"/{prefix}_{name}?")
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda name: _migrate(name, urls[name]), SERVICES))
    yield urls
    with psycopg.connect(server, autocommit=True) as conn:
        for name in SERVICES:
            conn.execute(f"DROP DATABASE {prefix}_{name} WITH (FORCE)")


@pytest.fixture(scope="module")
def nats_stream() -> Iterator[str]:
    """A stream of its own with the notifications service's three durables, all caught up."""
    stream = f"CHAOS_{secrets.token_hex(4).upper()}"

    async def run(create: bool) -> None:
        client = await nats.connect(os.environ["NATS_URL"])
        js = client.jetstream()
        if create:
            await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
            for durable in DURABLES:
                await js.add_consumer(
                    stream,
                    api.ConsumerConfig(durable_name=durable, ack_policy=api.AckPolicy.EXPLICIT),
                )
        else:
            await js.delete_stream(stream)
        await client.close()

    asyncio.run(run(True))
    yield stream
    asyncio.run(run(False))


def _truncate(urls: dict[str, str]) -> None:
    for url in urls.values():
        with psycopg.connect(url, autocommit=True) as conn:
            tables = [
                row[0]
                for row in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    " AND tablename <> 'django_migrations'"
                )
            ]
            conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")


class Scene:
    """A small clean run: a customer books two tickets and pays, an organizer watches
    through a webhook, one poison message was dead-lettered by its two consumers. Every
    row, message and email is what the real system would leave."""

    def __init__(self, tmp: Path, urls: dict[str, str], stream: str) -> None:
        self.tmp = tmp
        self.urls = urls
        self.topology = Topology(
            workdir=tmp,
            users_url="http://127.0.0.1:9",
            booking_urls=["http://127.0.0.1:9"],
            notifications_url="http://127.0.0.1:9",
            database_urls=urls,
            nats_urls=[os.environ["NATS_URL"]],
            mail_dir=tmp / "mail",
            webhook_url="http://127.0.0.1:9/hook",
            webhook_log=tmp / "webhooks.jsonl",
            settings={"NATS_STREAM": stream},
        )
        self.topology.mail_dir.mkdir()
        self.history_path = tmp / "history.jsonl"
        self.history = History(self.history_path)
        self.customer = str(uuid.uuid4())
        self.organizer = str(uuid.uuid4())
        self.emails = {self.customer: "ann@chaos.test", self.organizer: "olive@chaos.test"}
        self.endpoint = 0

    def verdict(self, heal_timeout: float = 5.0) -> Verdict:
        self.history.close()
        return check(self.topology, self.history_path, heal_timeout=heal_timeout)

    def sql(self, database: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.urls[database], autocommit=True) as conn:
            cursor = conn.execute(statement, list(params))
            return cursor.fetchall() if cursor.description else []

    def op(
        self,
        process: str,
        f: str,
        value: dict[str, Any],
        outcome: str,
        result: dict[str, Any],
        key: str | None = None,
    ) -> None:
        self.history.complete(self.history.invoke(process, f, value, key=key), outcome, result)

    # the pieces --------------------------------------------------------------------------

    def users(self) -> None:
        for process, user, role in (
            ("c0", self.customer, "customer"),
            ("o0", self.organizer, "organizer"),
        ):
            body = {"id": user, "email": self.emails[user], "role": role}
            self.op(process, "register", {"user": None}, "ok", {"status": 201, "body": body})
            self.message("users", "user.registered", {"user_id": user, "email": self.emails[user]})

    def event(self, *, total: int = 10, available: int = 8) -> int:
        rows = self.sql(
            "booking",
            "INSERT INTO events (organizer_id, name, description, date, time, location,"
            " total_tickets, available_tickets, price_per_ticket, currency, status,"
            " created_at, updated_at) VALUES (%s, 'Show', '', %s, '20:00', 'Hall', %s, %s,"
            " 10, 'USD', 'active', now(), now()) RETURNING id",
            self.organizer,
            (NOW + dt.timedelta(days=30)).date(),
            total,
            available,
        )
        return int(rows[0][0])

    def booking(
        self, event: int, *, tickets: int = 2, status: str = "confirmed", reason: str = ""
    ) -> int:
        rows = self.sql(
            "booking",
            "INSERT INTO bookings (user_id, kind, event_id, tickets_booked, status,"
            " cancel_reason, expires_at, amount, currency, created_at, updated_at,"
            " confirmed_at) VALUES (%s, 'tickets', %s, %s, %s, %s, now(), %s, 'USD', now(),"
            " now(), %s) RETURNING id",
            self.customer,
            event,
            tickets,
            status,
            reason,
            10 * tickets,
            NOW if status == "confirmed" else None,
        )
        return int(rows[0][0])

    def payment(self, booking: int, *, status: str = "success") -> int:
        rows = self.sql(
            "booking",
            "INSERT INTO payments (booking_id, user_id, amount, currency, status, provider,"
            " provider_reference, provider_idempotency_key, payment_token, failure_reason,"
            " retryable, created_at, updated_at) VALUES (%s, %s, 20, 'USD', %s, 'sandbox',"
            " '', %s, 'tok_visa', '', false, now(), now()) RETURNING id",
            booking,
            self.customer,
            status,
            uuid.uuid4(),
        )
        return int(rows[0][0])

    def key(
        self, endpoint: str, key: str, status: int, body: dict[str, Any], point: Any = None
    ) -> None:
        self.sql(
            "booking",
            "INSERT INTO idempotency_keys (owner, endpoint, key, request_fingerprint,"
            " response_status, response_body, response_content_type, recovery_point,"
            " created_at, expires_at) VALUES (%s, %s, %s, 'x', %s, %s, 'application/json',"
            " %s, now(), now() + interval '1 day')",
            self.customer,
            endpoint,
            key,
            status,
            Jsonb(body),
            None if point is None else Jsonb(point),
        )

    def book(
        self, event: int, booking: int, key: str, *, tickets: int = 2, record: bool = True
    ) -> None:
        answer = {"id": booking, "status": "pending", "event": event, "tickets_booked": tickets}
        value: dict[str, Any] = {"user": self.customer, "path": "/api/bookings/"}
        value["body"] = {"event": event, "tickets_booked": tickets}
        self.op("c0", "book", value, "ok", {"status": 201, "body": answer}, key=key)
        if record:
            self.key("POST bookings.create", key, 201, answer)

    def pay(self, booking: int, payment: int, key: str) -> None:
        answer = {"id": payment, "booking": booking, "status": "success"}
        value: dict[str, Any] = {
            "user": self.customer,
            "path": "/api/payments/",
            "booking": booking,
        }
        value["body"] = {"booking": booking, "payment_token": "tok_visa"}
        self.op("c0", "pay", value, "ok", {"status": 201, "body": answer}, key=key)
        self.key("POST payments.create", key, 201, answer, {"payment": payment})

    def message(
        self, database: str, kind: str, data: dict[str, Any], *, notify: bool = True
    ) -> str:
        """An outbox message that was sent, and what it made: the notification of its user, the
        email, and a webhook delivery for the organizer's endpoint."""
        message_id = str(uuid.uuid4())
        data = {"organizer_id": self.organizer, **data} if database == "booking" else data
        self.sql(
            database,
            "INSERT INTO outbox_messages (message_id, type, producer, version, occurred_at,"
            " data, sent_at, attempts, last_error) VALUES (%s, %s, 'x', 1, now(), %s, now(),"
            " 1, '')",
            message_id,
            kind,
            Jsonb(data),
        )
        if notify:
            self.notification(kind, data, message_id)
        if database == "booking" and self.endpoint:
            self.delivery(kind, message_id)
        return message_id

    def notification(self, kind: str, data: dict[str, Any], message_id: str | None = None) -> int:
        user = str(data["user_id"])
        rows = self.sql(
            "notifications",
            "INSERT INTO notifications_notification (user_id, kind, title, body, data,"
            " source_message_id, created_at) VALUES (%s, %s, 't', 'b', %s, %s, now())"
            " RETURNING id",
            user,
            kind,
            Jsonb(data),
            message_id or str(uuid.uuid4()),
        )
        notification = int(rows[0][0])
        self.sql(
            "notifications",
            "INSERT INTO notifications_emaildelivery (notification_id, to_email, status,"
            " attempts, next_attempt_at, last_error, created_at, sent_at) VALUES"
            " (%s, '', 'sent', 1, now(), '', now(), now())",
            notification,
        )
        self.mail(notification, self.emails[user])
        return notification

    def mail(self, notification: int, to: str, copy: int = 0) -> None:
        path = self.topology.mail_dir / f"{notification}-{copy}.eml"
        path.write_text(
            f"Subject: s\nTo: {to}\nMessage-ID: <notification-{notification}@turnstile.local>\n\nb\n"
        )

    def webhook_endpoint(self) -> None:
        rows = self.sql(
            "notifications",
            "INSERT INTO webhooks_webhookendpoint (organizer_id, url, secret, event_types,"
            " description, is_active, created_at, updated_at) VALUES (%s, 'http://x/h', 's',"
            " '[]', '', true, now(), now()) RETURNING id",
            self.organizer,
        )
        self.endpoint = int(rows[0][0])

    def delivery(self, kind: str, message_id: str) -> None:
        rows = self.sql(
            "notifications",
            "INSERT INTO webhooks_webhookdelivery (endpoint_id, message_id, message_type, payload,"
            " status, attempts, next_attempt_at, last_error, created_at) VALUES (%s, %s, %s,"
            " '{}', 'succeeded', 1, now(), '', now()) RETURNING id",
            self.endpoint,
            message_id,
            kind,
        )
        line = {
            "headers": {"turnstile-event-id": message_id, "turnstile-delivery-id": str(rows[0][0])}
        }
        with self.topology.webhook_log.open("a") as log:
            log.write(json.dumps(line) + "\n")

    def poison(self) -> None:
        marker = str(uuid.uuid4())
        value: dict[str, Any] = {"subject": "x.booking.created", "msg_id": marker}
        value["consumers"] = ["notifications", "webhooks"]
        self.op("poison", "poison", value, "ok", {"sequence": 1})
        for consumer in ("notifications", "webhooks"):
            self.dead_letter(consumer, json.dumps({"id": f"poison-{marker}"}))

    def dead_letter(self, consumer: str, payload: str) -> None:
        self.sql(
            "notifications",
            "INSERT INTO inbox_deadletter (consumer, message_id, message_type, subject,"
            " stream_sequence, deliveries, payload, error, created_at) VALUES (%s, '', '',"
            " 'x.booking.created', 1, 1, %s, 'PoisonMessageError: not an envelope', now())",
            consumer,
            payload,
        )

    def clean_sale(self) -> dict[str, Any]:
        """Two tickets booked (key k-book) and paid (key k-pay): confirmed."""
        self.users()
        self.webhook_endpoint()
        event = self.event()
        booking = self.booking(event)
        payment = self.payment(booking)
        self.book(event, booking, "k-book")
        self.pay(booking, payment, "k-pay")
        facts = {"user_id": self.customer, "booking_id": booking, "payment_id": payment}
        confirmed = self.message("booking", "booking.confirmed", facts)
        self.message("booking", "payment.succeeded", facts)
        self.poison()
        notification = self.sql(
            "notifications",
            "SELECT id FROM notifications_notification WHERE source_message_id = %s",
            confirmed,
        )[0][0]
        return {"event": event, "booking": booking, "payment": payment, "confirmed": notification}


@pytest.fixture
def scene(tmp_path: Path, database_urls: dict[str, str], nats_stream: str) -> Iterator[Scene]:
    _truncate(database_urls)
    made = Scene(tmp_path, database_urls, nats_stream)
    yield made
    made.history.close()


def test_a_clean_history_passes(scene: Scene) -> None:
    scene.clean_sale()
    verdict = scene.verdict()
    assert verdict.violations == []
    assert verdict.ok
    assert verdict.stats["operations"]["book"] == {"ok": 1}
    assert verdict.stats["time_to_heal"] is not None
    assert "violations" in verdict.table()


def test_an_oversold_event_is_reported(scene: Scene) -> None:
    ids = scene.clean_sale()
    scene.sql("booking", "UPDATE events SET total_tickets = 1, available_tickets = 0")
    violations = scene.verdict().violations
    assert (
        f"event {ids['event']} is oversold: 2 tickets held or sold of 1, available 0" in violations
    )


def test_tickets_not_conserved_are_reported(scene: Scene) -> None:
    ids = scene.clean_sale()
    scene.sql("booking", "UPDATE events SET available_tickets = 7")
    violations = scene.verdict().violations
    assert any(f"event {ids['event']} does not conserve tickets" in v for v in violations)


def test_a_missing_acknowledged_booking_is_reported(scene: Scene) -> None:
    ids = scene.clean_sale()
    value: dict[str, Any] = {"user": scene.customer, "path": "/api/bookings/"}
    value["body"] = {"event": ids["event"], "tickets_booked": 1}
    answer = {"status": 201, "body": {"id": 4242, "status": "pending"}}
    scene.op("c0", "book", value, "ok", answer, key="k-lost")
    violations = scene.verdict().violations
    assert any(
        v.startswith("booking 4242, acknowledged to c0 (key k-lost), is missing")
        for v in violations
    )


def test_a_server_error_is_reported_and_a_retryable_503_is_not(scene: Scene) -> None:
    ids = scene.clean_sale()
    value: dict[str, Any] = {"user": scene.customer, "path": "/api/bookings/"}
    value["body"] = {"event": ids["event"], "tickets_booked": 1}
    problem = "application/problem+json"
    unavailable = {"status": 503, "body": {"status": 503}, "content_type": problem}
    scene.op("c0", "book", value, "info", {**unavailable, "retry_after": "2"}, key="k-503")
    scene.op("c0", "book", value, "info", unavailable, key="k-503")
    scene.op("c0", "book", value, "info", {"status": 500, "body": "boom"}, key="k-503")
    violations = [v for v in scene.verdict().violations if " answered " in v]
    assert len(violations) == 2, violations
    assert "answered 503 without a problem and Retry-After" in violations[0]
    assert "answered 500: boom" in violations[1]


def test_a_key_with_two_effects_is_reported(scene: Scene) -> None:
    """The first request with the key made a booking, lost the key's record, and the retry
    with the same key made another one: the first is named by no record."""
    ids = scene.clean_sale()
    orphan = scene.booking(ids["event"], tickets=2, status="canceled", reason="expired")
    scene.sql("booking", "UPDATE events SET available_tickets = 8")
    violations = scene.verdict().violations
    assert any(
        v.startswith(f"booking {orphan} of user {scene.customer}")
        and "named by no Idempotency-Key record" in v
        and "keys asking for it: k-book" in v
        for v in violations
    ), violations


def test_two_answers_of_one_key_naming_different_bookings_are_reported(scene: Scene) -> None:
    ids = scene.clean_sale()
    value: dict[str, Any] = {"user": scene.customer, "path": "/api/bookings/"}
    value["body"] = {"event": ids["event"], "tickets_booked": 2}
    answer = {"status": 201, "body": {"id": ids["booking"] + 100}, "replayed": True}
    scene.op("c0", "book", value, "ok", answer, key="k-book")
    violations = scene.verdict().violations
    assert (
        f"key k-book had 2 effects: bookings [{ids['booking']}, {ids['booking'] + 100}]"
        in violations
    )


def test_a_missing_email_is_reported(scene: Scene) -> None:
    ids = scene.clean_sale()
    (scene.topology.mail_dir / f"{ids['confirmed']}-0.eml").unlink()
    violations = scene.verdict().violations
    assert (
        f"booking.confirmed (booking {ids['booking']}, user {scene.customer}) produced 0 emails, not 1"
        in violations
    )


def test_a_duplicate_email_is_reported_and_a_resent_copy_is_not(scene: Scene) -> None:
    ids = scene.clean_sale()
    scene.mail(ids["confirmed"], "ann@chaos.test", copy=1)  # the same Message-ID again
    assert scene.verdict().violations == []

    data = {
        "user_id": scene.customer,
        "booking_id": ids["booking"],
        "organizer_id": scene.organizer,
    }
    scene.notification("booking.confirmed", data)  # a second one, of no outbox message
    violations = check(scene.topology, scene.history_path, heal_timeout=5).violations
    fact = f"booking.confirmed (booking {ids['booking']}, user {scene.customer})"
    assert f"{fact} produced 2 emails, not 1" in violations
    assert f"{fact} produced 2 notifications, not 1" in violations


def test_an_email_to_the_wrong_address_is_reported(scene: Scene) -> None:
    ids = scene.clean_sale()
    scene.mail(ids["confirmed"], "olive@chaos.test", copy=1)
    violations = scene.verdict().violations
    assert any(
        v.startswith(f"email <notification-{ids['confirmed']}@turnstile.local> went to olive")
        for v in violations
    )


def test_a_dead_letter_other_than_the_poison_is_reported(scene: Scene) -> None:
    scene.clean_sale()
    scene.dead_letter("contacts", '{"id": "something else"}')
    violations = scene.verdict().violations
    assert any(
        v.startswith("dead letter") and "(contacts, x.booking.created #1)" in v for v in violations
    )


def test_a_webhook_never_received_is_reported(scene: Scene) -> None:
    scene.clean_sale()
    scene.topology.webhook_log.write_text("")
    violations = scene.verdict().violations
    assert len([v for v in violations if v.endswith("never reached the receiver")]) == 2


def test_what_never_heals_is_reported(scene: Scene) -> None:
    ids = scene.clean_sale()
    scene.sql(
        "notifications",
        "UPDATE notifications_emaildelivery SET status = 'pending' WHERE notification_id = %s",
        ids["confirmed"],
    )
    verdict = scene.verdict(heal_timeout=1.0)
    assert verdict.stats["time_to_heal"] is None
    assert "not healed after 1 s: 1 pending emails" in verdict.violations
