from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from booking_service.bookings.models import Booking, BookingStatus
from booking_service.payments.models import Payment
from booking_service.testing import Caller, make_event

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def held_booking(caller: Caller, tickets: int = 2) -> int:
    event = make_event(total_tickets=10, price="12.00")
    response = caller.client().post(
        "/api/bookings/", {"event": event.pk, "tickets_booked": tickets}, format="json"
    )
    assert response.status_code == 201
    return int(response.json()["id"])


def test_pay_with_tok_visa_confirms(customer: Caller) -> None:
    booking_id = held_booking(customer)
    client = customer.client()
    response = client.post(
        "/api/payments/", {"booking": booking_id, "payment_token": "tok_visa"}, format="json"
    )
    assert response.status_code == 201, response.content
    payment = response.json()
    assert (payment["status"], payment["amount"], payment["booking"]) == (
        "success",
        "24.00",
        booking_id,
    )
    assert client.get(f"/api/bookings/{booking_id}/").json()["status"] == "confirmed"
    assert client.get(f"/api/payments/{payment['id']}/").json()["id"] == payment["id"]
    listed = client.get(f"/api/payments/?booking={booking_id}").json()
    assert [p["id"] for p in listed["results"]] == [payment["id"]]
    again = client.post(
        "/api/payments/", {"booking": booking_id, "payment_token": "tok_visa"}, format="json"
    )
    assert again.status_code == 409
    assert again.json()["type"] == "urn:problem:already-paid"


def test_declined_payment_is_402_and_booking_stays_pending(customer: Caller) -> None:
    booking_id = held_booking(customer)
    response = customer.client().post(
        "/api/payments/",
        {"booking": booking_id, "payment_token": "tok_chargeDeclined"},
        format="json",
    )
    assert response.status_code == 402
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:problem:payment-failed"
    assert body["payment"]["status"] == "failed"
    assert body["payment"]["failure_reason"] == "card_declined"
    assert Booking.objects.get(pk=booking_id).status == BookingStatus.PENDING


def test_client_amount_must_match(customer: Caller) -> None:
    booking_id = held_booking(customer)
    response = customer.client().post(
        "/api/payments/",
        {"booking": booking_id, "payment_token": "tok_visa", "amount": "1.00"},
        format="json",
    )
    assert response.status_code == 422
    assert response.json()["amount"] == "24.00"
    assert not Payment.objects.exists()


def test_nobody_pays_or_reads_another_users_payment(
    customer: Caller, other_customer: Caller
) -> None:
    booking_id = held_booking(customer)
    response = other_customer.client().post(
        "/api/payments/", {"booking": booking_id, "payment_token": "tok_visa"}, format="json"
    )
    assert response.status_code == 404
    payment_id = (
        customer.client()
        .post("/api/payments/", {"booking": booking_id, "payment_token": "tok_visa"})
        .json()["id"]
    )
    assert other_customer.client().get(f"/api/payments/{payment_id}/").status_code == 404
    assert other_customer.client().get("/api/payments/").json()["count"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"booking": 1},
        {"payment_token": "tok_visa"},
        {"booking": "abc", "payment_token": "tok_visa"},
        {"booking": 10**30, "payment_token": "tok_visa"},
        {"booking": 99999999, "payment_token": "tok_visa"},
        {"booking": "BOOKING", "payment_token": "tok_visa", "amount": "lots"},
        {"booking": "BOOKING", "payment_token": ""},
    ],
)
def test_bad_payment_input_is_a_4xx_problem(customer: Caller, body: dict[str, object]) -> None:
    booking_id = held_booking(customer)
    body = {key: booking_id if value == "BOOKING" else value for key, value in body.items()}
    response = customer.client().post("/api/payments/", body, format="json")
    assert 400 <= response.status_code < 500
    assert response["Content-Type"] == PROBLEM
    assert not Payment.objects.exists()
    assert APIClient().post("/api/payments/", body, format="json").status_code == 401


def test_pay_for_a_slot_and_cancel_refunds(customer: Caller) -> None:
    from booking_service.testing import make_resource, next_slot

    resource = make_resource(price="40.00")
    start, end = next_slot()
    client = customer.client()
    booking = client.post(
        "/api/bookings/",
        {"resource": resource.pk, "start_time": start.isoformat(), "end_time": end.isoformat()},
        format="json",
    ).json()
    paid = client.post(
        "/api/payments/", {"booking": booking["id"], "payment_token": "tok_visa"}, format="json"
    )
    assert paid.status_code == 201
    assert paid.json()["amount"] == "40.00"
    assert client.delete(f"/api/bookings/{booking['id']}/").json()["status"] == "canceled"
    assert client.get(f"/api/payments/{paid.json()['id']}/").json()["status"] == "refunded"
    # The slot is free again.
    again = client.post(
        "/api/bookings/",
        {"resource": resource.pk, "start_time": start.isoformat(), "end_time": end.isoformat()},
        format="json",
    )
    assert again.status_code == 201
