"""`Idempotency-Key` on booking and payment POSTs (servicekit.idempotency)."""

from __future__ import annotations

import datetime as dt
import io
import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from booking_service.bookings.models import Booking
from booking_service.payments.models import Payment
from booking_service.payments.providers import ChargeResult, SandboxPaymentProvider
from booking_service.testing import Caller, make_event
from servicekit.idempotency.models import IdempotencyKey


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
    event = make_event(total_tickets=10)
    booking_id = post(
        customer, "/api/bookings/", {"event": event.pk, "tickets_booked": 1}, None
    ).json()["id"]
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
    event = make_event(total_tickets=10)
    booking_id = post(
        customer, "/api/bookings/", {"event": event.pk, "tickets_booked": 1}, None
    ).json()["id"]
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


@pytest.mark.django_db
def test_a_key_left_in_flight_by_a_dead_process_is_freed(customer: Caller) -> None:
    event = make_event(total_tickets=10)
    body = {"event": event.pk, "tickets_booked": 1}
    first = post(customer, "/api/bookings/", body, "key-crash")
    assert first.status_code == 201
    # As if the process died after reserving the key and before storing the answer.
    IdempotencyKey.objects.update(response_status=None, response_body=None)
    assert post(customer, "/api/bookings/", body, "key-crash").status_code == 409  # in flight
    IdempotencyKey.objects.update(created_at=timezone.now() - dt.timedelta(minutes=2))
    retry = post(customer, "/api/bookings/", body, "key-crash")
    assert retry.status_code == 201
    assert post(customer, "/api/bookings/", body, "key-crash")["Idempotent-Replayed"] == "true"
