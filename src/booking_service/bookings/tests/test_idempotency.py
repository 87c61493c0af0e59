"""`Idempotency-Key` on booking and payment POSTs (servicekit.idempotency)."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import io
import json
import os
import signal
import threading
import urllib.request
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import psutil
import psycopg
import pytest
from django.core.management import call_command
from django.db import OperationalError, connection
from django.utils import timezone

from booking_service.api import bookings as apis
from booking_service.api.bookings import BookingCreateApi
from booking_service.bookings.models import Booking
from booking_service.payments.models import Payment, SandboxLedgerEntry
from booking_service.payments.providers import ChargeResult, SandboxPaymentProvider
from booking_service.testing import make_event
from servicekit.idempotency import views
from servicekit.idempotency.models import IdempotencyKey
from servicekit.idempotency.services import (
    Scope,
    idempotency_key_checkpoint,
    idempotency_key_store,
    request_fingerprint,
)
from servicekit.testing import Caller, current_database_url, service_process, wait_until


def post(caller: Caller, path: str, body: Mapping[str, Any], key: str | None) -> Any:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return caller.client().post(path, body, format="json", headers=headers)


@pytest.mark.django_db
def test_same_key_and_body_replays_the_first_response(customer: Caller) -> None:
    event = make_event(total_tickets=10)
    body = {"event": event.pk, "tickets_booked": 2}
    first = post(customer, "/api/bookings/", body, "key-1")
    second = post(
        customer, "/api/bookings/create/", {"tickets_booked": 2, "event": event.pk}, "key-1"
    )
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Booking.objects.count() == 1
    event.refresh_from_db()
    assert event.available_tickets == 8


@pytest.mark.django_db
def test_same_key_other_body_is_422(customer: Caller) -> None:
    event = make_event(total_tickets=10)
    assert (
        post(customer, "/api/bookings/", {"event": event.pk, "tickets_booked": 2}, "k").status_code
        == 201
    )
    response = post(customer, "/api/bookings/", {"event": event.pk, "tickets_booked": 3}, "k")
    assert response.status_code == 422
    assert response.json()["type"] == "urn:problem:idempotency-key-reused"
    assert Booking.objects.count() == 1


@pytest.mark.django_db
def test_keys_are_scoped_per_user_and_endpoint(customer: Caller, other_customer: Caller) -> None:
    event = make_event(total_tickets=10)
    body = {"event": event.pk, "tickets_booked": 1}
    assert post(customer, "/api/bookings/", body, "shared").status_code == 201
    assert post(other_customer, "/api/bookings/", body, "shared").status_code == 201
    booking_id = Booking.objects.filter(user_id=customer.id).get().pk
    response = post(
        customer, "/api/payments/", {"booking": booking_id, "payment_token": "tok_visa"}, "shared"
    )
    assert response.status_code == 201
    assert Booking.objects.count() == 2


@pytest.mark.django_db
def test_errors_are_replayed_too_and_keys_expire(customer: Caller) -> None:
    event = make_event(total_tickets=1)
    other = make_event(total_tickets=1)
    post(customer, "/api/bookings/", {"event": other.pk, "tickets_booked": 1}, None)
    body = {"event": other.pk, "tickets_booked": 1}
    assert post(customer, "/api/bookings/", body, "sold").status_code == 409
    replay = post(customer, "/api/bookings/", body, "sold")
    assert replay.status_code == 409
    assert replay["Idempotent-Replayed"] == "true"
    assert replay["Content-Type"] == "application/problem+json"
    # After 24 hours the key is forgotten and may be used again.
    IdempotencyKey.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = post(customer, "/api/bookings/", {"event": event.pk, "tickets_booked": 1}, "sold")
    assert response.status_code == 201
    IdempotencyKey.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    out = io.StringIO()
    call_command("purge_idempotency_keys", stdout=out)
    assert "deleted 1" in out.getvalue()
    assert not IdempotencyKey.objects.exists()


@pytest.mark.django_db
def test_payment_retry_with_the_same_key_charges_once(customer: Caller) -> None:
    booking_id = _held_booking(customer)
    body = {"booking": booking_id, "payment_token": "tok_visa"}
    first = post(customer, "/api/payments/", body, "pay-1")
    second = post(customer, "/api/payments/", body, "pay-1")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert Payment.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_gets_409(customer: Caller, settings: Any) -> None:
    """The second request arrives while the first is inside the payment provider."""
    settings.PAYMENT_PROVIDER = "booking_service.bookings.tests.test_idempotency.GatedSandbox"
    booking_id = _held_booking(customer)
    body = {"booking": booking_id, "payment_token": "tok_visa"}
    statuses: list[int] = []

    def first() -> None:
        try:
            statuses.append(post(customer, "/api/payments/", body, "dup").status_code)
        finally:
            connection.close()

    GatedSandbox.entered.clear()
    GatedSandbox.release.clear()
    thread = threading.Thread(target=first)
    thread.start()
    assert GatedSandbox.entered.wait(10)
    duplicate = post(customer, "/api/payments/", body, "dup")
    GatedSandbox.release.set()
    thread.join(10)
    assert duplicate.status_code == 409
    assert duplicate.json()["type"] == "urn:problem:idempotency-key-in-use"
    assert statuses == [201]
    assert Payment.objects.count() == 1
    replay = post(customer, "/api/payments/", body, "dup")
    assert replay.status_code == 201


def _held_booking(customer: Caller) -> int:
    """A pending hold of one ticket of a new event, booked without a key."""
    event = make_event(total_tickets=10)
    response = post(customer, "/api/bookings/", {"event": event.pk, "tickets_booked": 1}, None)
    return int(response.json()["id"])


class GatedSandbox(SandboxPaymentProvider):
    """A sandbox whose charge waits until the test lets it finish."""

    entered = threading.Event()
    release = threading.Event()

    def charge(
        self, *, amount: Decimal, currency: str, token: str, idempotency_key: str
    ) -> ChargeResult:
        self.entered.set()
        self.release.wait(10)
        return super().charge(
            amount=amount, currency=currency, token=token, idempotency_key=idempotency_key
        )


@pytest.mark.django_db(transaction=True)
def test_an_answer_that_cannot_be_recorded_takes_its_booking_with_it(
    customer: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The booking commits with its key's answer or not at all: when recording the answer
    fails (the database went away), the hold is rolled back, the client is told 503, and the
    retry with the key books once."""
    event = make_event(total_tickets=10)
    body = {"event": event.pk, "tickets_booked": 2}

    def database_gone(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(views, "idempotency_key_store", database_gone)
    failed = post(customer, "/api/bookings/", body, "key-lost")
    assert failed.status_code == 503
    assert failed["Retry-After"]
    assert not Booking.objects.exists()
    assert not IdempotencyKey.objects.exists()
    event.refresh_from_db()
    assert event.available_tickets == 10
    monkeypatch.undo()
    retry = post(customer, "/api/bookings/", body, "key-lost")
    assert retry.status_code == 201
    assert post(customer, "/api/bookings/", body, "key-lost")["Idempotent-Replayed"] == "true"
    assert Booking.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_server_error_after_the_change_rolls_it_back_and_frees_the_key(
    customer: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = make_event(total_tickets=10)
    body = {"event": event.pk, "tickets_booked": 1}

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug after the booking was written")

    monkeypatch.setattr(apis.BookingOutputSerializer, "to_representation", broken)
    client = customer.client()
    client.raise_request_exception = False
    failed = client.post("/api/bookings/", body, format="json", headers={"Idempotency-Key": "b"})
    assert failed.status_code == 500
    assert not Booking.objects.exists()
    monkeypatch.undo()
    assert post(customer, "/api/bookings/", body, "b").status_code == 201
    assert Booking.objects.count() == 1


class DyingSandbox(SandboxPaymentProvider):
    """Charges, then the process dies before it can answer."""

    def charge(
        self, *, amount: Decimal, currency: str, token: str, idempotency_key: str
    ) -> ChargeResult:
        super().charge(
            amount=amount, currency=currency, token=token, idempotency_key=idempotency_key
        )
        raise SystemExit("killed")


@pytest.mark.django_db(transaction=True)
def test_a_payment_retried_after_its_process_died_resumes_and_charges_once(
    customer: Caller, settings: Any
) -> None:
    """The pending payment committed with the key's recovery point; the retry with the key
    asks the provider again with the payment's own key and answers its outcome."""
    booking_id = _held_booking(customer)
    body = {"booking": booking_id, "payment_token": "tok_visa"}
    settings.PAYMENT_PROVIDER = "booking_service.bookings.tests.test_idempotency.DyingSandbox"
    with pytest.raises(SystemExit):
        post(customer, "/api/payments/", body, "pay-died")
    payment = Payment.objects.get()
    assert payment.status == "pending"
    assert IdempotencyKey.objects.get().recovery_point == {"payment": payment.pk}
    settings.PAYMENT_PROVIDER = "booking_service.payments.providers.SandboxPaymentProvider"
    retry = post(customer, "/api/payments/", body, "pay-died")
    assert retry.status_code == 201
    assert retry.json()["id"] == payment.pk
    assert Payment.objects.get().status == "success"
    assert SandboxLedgerEntry.objects.filter(operation_key__startswith="charge:").count() == 1
    replay = post(customer, "/api/payments/", body, "pay-died")
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == retry.json()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_server_killed_before_its_commit_leaves_neither_booking_nor_key(
    customer: Caller, jwks_url: str
) -> None:
    """A real server process is SIGKILLed after it wrote the booking and while it records the
    key's answer (held up by a lock this test holds); the retry with the key books once."""
    event = make_event(total_tickets=10)
    body = {"event": event.pk, "tickets_booked": 2}
    database_url = current_database_url()
    env = {"DATABASE_URL": database_url, "JWT_JWKS_URL": jwks_url, "DB_CONN_MAX_AGE": "0"}
    endpoint = f"POST {BookingCreateApi.idempotency_scope}"
    with psycopg.connect(database_url) as blocker:
        # An uncommitted row of the same key: the request's INSERT of its answer waits on it.
        blocker.execute(
            "INSERT INTO idempotency_keys (owner, endpoint, key, request_fingerprint, "
            "created_at, expires_at, response_content_type) "
            "VALUES (%s, %s, 'k-kill', '', now(), now() + interval '1 day', '')",
            [str(customer.id), endpoint],
        )
        with service_process("booking_service", env=env) as base:
            request = threading.Thread(
                target=_post_quietly, args=(f"{base}/api/bookings/", body, customer.token)
            )
            request.start()
            _wait_for_a_backend_waiting_on_a_lock(blocker)
            _kill_server(base)
            request.join(30)
        blocker.rollback()
    _wait_until_no_backend_waits(database_url)
    assert not Booking.objects.exists()
    event.refresh_from_db()
    assert event.available_tickets == 10
    assert not IdempotencyKey.objects.exists()
    retry = post(customer, "/api/bookings/", body, "k-kill")
    assert retry.status_code == 201
    assert post(customer, "/api/bookings/", body, "k-kill")["Idempotent-Replayed"] == "true"
    assert Booking.objects.count() == 1


def _post_quietly(url: str, body: dict[str, Any], token: str) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": "k-kill",
        },
    )
    with contextlib.suppress(OSError, http.client.HTTPException):
        urllib.request.urlopen(request, timeout=30).close()


def _backends(dsn: str, condition: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as watcher:
        row = watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "  # noqa: S608
            f"AND pid <> pg_backend_pid() AND {condition}"
        ).fetchone()
    return int(row[0]) if row else 0


def _wait_for_a_backend_waiting_on_a_lock(conn: psycopg.Connection[Any]) -> None:
    if not wait_until(lambda: _backends(conn.info.dsn, "wait_event_type = 'Lock'") > 0, 20, 0.05):
        raise AssertionError("the request never reached the key's answer")


def _wait_until_no_backend_waits(database_url: str) -> None:
    busy = "state <> 'idle' AND backend_type = 'client backend'"
    wait_until(lambda: _backends(database_url, busy) == 0, 20, 0.05)


def _kill_server(base: str) -> None:
    bind = base.removeprefix("http://")
    for process in psutil.process_iter(["cmdline"]):
        if bind in (process.info["cmdline"] or []):
            with contextlib.suppress(psutil.Error):
                os.killpg(os.getpgid(process.pid), signal.SIGKILL)
                return
    raise AssertionError(f"no server process bound to {bind}")


@pytest.mark.django_db(transaction=True)
def test_a_payment_retried_after_an_unknown_outcome_resumes_and_learns_it(
    customer: Caller,
) -> None:
    """A 202 (the provider's answer unknown) is not the key's answer: the payment's last
    phase has not finished. The retry with the key resumes (asks the provider again with the
    payment's own key) and answers the outcome, charging once; a replay of a 202 would say
    `pending` for the key's whole lifetime, without the `Location` to poll."""
    booking_id = _held_booking(customer)
    body = {"booking": booking_id, "payment_token": "tok_chargeThenTimeout"}
    first = post(customer, "/api/payments/", body, "pay-unknown")
    assert first.status_code == 202
    assert first["Location"] == f"/api/payments/{first.json()['id']}"
    retry = post(customer, "/api/payments/", body, "pay-unknown")
    assert retry.status_code == 201, retry.json()
    assert retry.json()["id"] == first.json()["id"]
    assert retry.json()["status"] == "success"
    assert Payment.objects.count() == 1
    assert SandboxLedgerEntry.objects.filter(operation_key__startswith="charge:").count() == 1
    replay = post(customer, "/api/payments/", body, "pay-unknown")
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == retry.json()


@pytest.mark.django_db(transaction=True)
def test_a_replay_has_the_content_type_of_the_first_answer(customer: Caller) -> None:
    """The content type rendering used, not the client's Accept header with its parameters
    (`application/json;q=0.9` is no content type)."""
    event = make_event(total_tickets=10)
    body = {"event": event.pk, "tickets_booked": 1}
    client = customer.client()
    headers = {"Idempotency-Key": "accept", "Accept": "application/json;q=0.9"}
    first = client.post("/api/bookings/", body, format="json", headers=headers)
    replay = client.post("/api/bookings/", body, format="json", headers=headers)
    assert first.status_code == replay.status_code == 201
    assert replay["Idempotent-Replayed"] == "true"
    assert replay["Content-Type"] == first["Content-Type"] == "application/json"


@pytest.mark.django_db(transaction=True)
def test_a_key_reserved_by_the_previous_version_is_in_use_while_its_request_may_run(
    customer: Caller,
) -> None:
    """While a release rolls out, the previous version reserves a key (a row with neither an
    answer nor a recovery point) and runs its request without an advisory lock; a
    duplicate on this version must not run the request a second time meanwhile."""
    event = make_event(total_tickets=10)
    body = {"event": event.pk, "tickets_booked": 1}
    now = timezone.now()
    reserved = IdempotencyKey.objects.create(
        owner=str(customer.id),
        endpoint=f"POST {BookingCreateApi.idempotency_scope}",
        key="rolling",
        request_fingerprint=request_fingerprint(json.dumps(body).encode()),
        created_at=now,
        expires_at=now + dt.timedelta(days=1),
    )
    duplicate = post(customer, "/api/bookings/", body, "rolling")
    assert duplicate.status_code == 409
    assert duplicate.json()["type"] == "urn:problem:idempotency-key-in-use"
    assert not Booking.objects.exists()
    # Its request never answered within the previous version's in-flight limit: it died.
    IdempotencyKey.objects.filter(pk=reserved.pk).update(created_at=now - dt.timedelta(seconds=61))
    assert post(customer, "/api/bookings/", body, "rolling").status_code == 201
    assert Booking.objects.count() == 1


@pytest.mark.django_db
def test_the_first_recorded_answer_stands() -> None:
    """A request that lost its lock mid-way (its connection was replaced) and answers late
    never overwrites the answer a retry recorded meanwhile."""
    scope = Scope(owner="u", endpoint="POST payments.create", key="k", fingerprint="f")
    idempotency_key_checkpoint(scope, {"payment": 7})
    idempotency_key_store(scope, status=201, body={"id": 7}, content_type="application/json")
    idempotency_key_store(
        scope, status=402, body={"id": 7, "status": "failed"}, content_type="application/json"
    )
    kept = IdempotencyKey.objects.get()
    assert (kept.response_status, kept.response_body) == (201, {"id": 7})
    assert kept.recovery_point == {"payment": 7}
