from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from booking_service.bookings.models import Booking, BookingStatus, CancelReason
from booking_service.bookings.services import booking_create_tickets
from booking_service.events.models import Event
from booking_service.resources.models import Resource
from booking_service.testing import make_event
from servicekit.testing import Caller, free_port, wait_until


def seed_context(organizer_id: str) -> str:
    return json.dumps(
        {
            "users": {
                "accounts": [
                    {"role": "customer", "id": str(uuid.uuid4()), "email": "c@example.com"},
                    {"role": "organizer", "id": organizer_id, "email": "o@example.com"},
                ]
            }
        }
    )


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_prints_json_last() -> None:
    organizer_id = str(uuid.uuid4())
    outputs = []
    for _ in range(2):
        out = io.StringIO()
        call_command("seed_demo", "--context", seed_context(organizer_id), stdout=out)
        outputs.append(json.loads(out.getvalue().strip().splitlines()[-1]))
    assert outputs[0] == outputs[1]
    assert outputs[0]["organizer_id"] == organizer_id
    assert len(outputs[0]["events"]) == 3
    assert Event.objects.filter(organizer_id=organizer_id).count() == 3
    assert Resource.objects.filter(organizer_id=organizer_id).count() == 1
    out = io.StringIO()
    call_command("seed_demo", "--context", "{}", stdout=out)
    assert "skipped" in json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.mark.django_db
def test_booking_post_is_one_short_transaction(customer: Caller) -> None:
    event = make_event(total_tickets=10)
    client = customer.client()
    # The first booking on a connection also prepares the batch statement.
    assert (
        client.post("/api/bookings/", {"event": event.pk, "tickets_booked": 1}).status_code == 201
    )
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/api/bookings/", {"event": event.pk, "tickets_booked": 1})
    assert response.status_code == 201
    # The batched path: one round trip (the row lock and the write, sent together).
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 1
    assert statements[0].lstrip().upper().startswith("SELECT 1 FROM")


@pytest.mark.django_db
def test_regular_booking_path_is_one_short_transaction(customer: Caller) -> None:
    event = make_event(total_tickets=10)
    with CaptureQueriesContext(connection) as queries:
        booking_create_tickets(user_id=customer.id, event_id=event.pk, tickets_booked=1)
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    # conditional UPDATE, the customer's held tickets (after the UPDATE's row lock, so a
    # statement of its own), booking INSERT, outbox INSERT, NOTIFY (+ savepoint bookkeeping)
    assert statements.count("UPDATE") == 1
    assert statements.count("INSERT") == 2
    assert len([s for s in statements if s not in {"SAVEPOINT", "RELEASE"}]) <= 5


@pytest.mark.django_db
def test_schema_and_health_are_served() -> None:
    client = APIClient()
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/health/live").json()["service"] == "booking"


@pytest.mark.django_db
def test_oversized_body_is_a_413_problem(customer: Caller) -> None:
    response = customer.client().post(
        "/api/bookings/",
        '{"x": "' + "a" * 400_000 + '"}',
        content_type="application/json",
        headers={"Idempotency-Key": "big"},
    )
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == "urn:problem:body-too-large"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_sweeper_loop_process_expires_holds(settings: Any) -> None:
    event = make_event(total_tickets=5)
    booking = booking_create_tickets(user_id=uuid.uuid4(), event_id=event.pk, tickets_booked=3)
    Booking.objects.filter(pk=booking.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    parts = urlsplit(os.environ["DATABASE_URL"])
    env = dict(os.environ)
    env["DATABASE_URL"] = urlunsplit(
        parts._replace(path="/" + str(connection.settings_dict["NAME"]))
    )
    env["DJANGO_SETTINGS_MODULE"] = "booking_service.settings"
    sweeper = subprocess.Popen(
        [sys.executable, "-m", "booking_service", "release_expired_holds", "--loop", "--interval", "0.2"],
        env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            booking.refresh_from_db()
            if booking.status == BookingStatus.CANCELED:
                break
            time.sleep(0.2)
    finally:
        sweeper.send_signal(signal.SIGTERM)
        assert sweeper.wait(15) == 0
    assert booking.cancel_reason == CancelReason.EXPIRED
    event.refresh_from_db()
    assert event.available_tickets == 5


@pytest.mark.slow
def test_the_sweeper_outlives_a_database_that_is_away(tmp_path: Any) -> None:
    """Nobody listens where the sweeper's database should be: each step of each round says so
    in one line, without a traceback; the heartbeat keeps going; one SIGTERM stops it with
    status 0."""
    env = dict(os.environ)
    env["DATABASE_URL"] = f"postgres://turnstile@127.0.0.1:{free_port()}/booking"
    env["DJANGO_SETTINGS_MODULE"] = "booking_service.settings"
    env["WORKER_HEARTBEAT_DIR"] = str(tmp_path / "beats")
    log = tmp_path / "sweeper.log"
    with log.open("wb") as out:
        sweeper = subprocess.Popen(
            [sys.executable, "-m", "booking_service", "release_expired_holds", "--loop",
             "--interval", "0.2"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        assert wait_until(lambda: log.read_text().count("database unavailable") >= 8, 30)
        beat = tmp_path / "beats" / "booking.release_expired_holds"
        assert wait_until(lambda: beat.exists() and time.time() - beat.stat().st_mtime < 1.5, 10)
    finally:
        sweeper.send_signal(signal.SIGTERM)
        status = sweeper.wait(15)
    output = log.read_text()
    assert status == 0, output
    assert "Traceback" not in output
    for step in ("expiring holds", "refunding orphaned payments", "settling stale payments"):
        assert f"sweeper: {step}: database unavailable" in output
    assert "sweeper stopped" in output
