from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from booking_service.bookings.models import Booking, BookingStatus
from booking_service.payments.models import Payment
from booking_service.testing import database_rows, make_event
from servicekit.testing import Caller

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


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"booking": "BOOKING", "payment_token": 5}, "payment_token"),
        ({"booking": "BOOKING", "payment_token": "tok_visa\r\n"}, "payment_token"),
        ({"booking": "BOOKING_AS_TEXT", "payment_token": "tok_visa"}, "booking"),
        ({"booking": -1, "payment_token": "tok_visa"}, "booking"),
        ({"booking": True, "payment_token": "tok_visa"}, "booking"),
    ],
)
def test_bad_payment_input_is_400_and_changes_nothing(
    customer: Caller, body: dict[str, object], field: str
) -> None:
    booking_id = held_booking(customer)
    replace = {"BOOKING": booking_id, "BOOKING_AS_TEXT": str(booking_id)}
    payload = {key: replace.get(str(value), value) for key, value in body.items()}
    before = database_rows()
    response = customer.client().post("/api/payments/", payload, format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()["errors"]) == {field}
    assert database_rows() == before


@pytest.mark.parametrize(
    "query", ["booking=abc", "booking=", "booking=99999999999999999999", "booking=0"]
)
def test_bad_payment_filters_are_400_naming_booking(customer: Caller, query: str) -> None:
    response = customer.client().get(f"/api/payments/?{query}")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == PROBLEM
    assert set(response.json()["errors"]) == {"booking"}


@pytest.mark.parametrize("pk", ["99999999999999999999", "0", "abc"])
def test_payment_ids_no_row_can_have_are_404(customer: Caller, pk: str) -> None:
    assert customer.client().get(f"/api/payments/{pk}/").status_code == 404


def test_an_unknown_outcome_is_202_pending_and_the_sweeper_settles_it(customer: Caller) -> None:
    import datetime as dt

    from booking_service.actions.payments import payments_resolve_stale

    booking_id = held_booking(customer)
    client = customer.client()
    body = {"booking": booking_id, "payment_token": "tok_chargeThenTimeout"}
    accepted = client.post("/api/payments/", body, format="json")
    assert accepted.status_code == 202, accepted.content
    payment = accepted.json()
    assert (payment["status"], payment["failure_reason"]) == ("pending", "")
    assert client.get(accepted["Location"]).json()["id"] == payment["id"]
    # Paying again while the outcome is unknown is refused, and says what to poll.
    again = client.post("/api/payments/", {**body, "payment_token": "tok_visa"}, format="json")
    assert again.status_code == 409
    assert again["Content-Type"] == PROBLEM
    assert again.json()["type"] == "urn:problem:payment-in-progress"
    assert again.json()["payment_id"] == payment["id"]
    assert Payment.objects.count() == 1
    payments_resolve_stale(older_than=dt.timedelta(0))
    settled = client.get(f"/api/payments/{payment['id']}/").json()
    assert settled["status"] == "success"
    assert client.get(f"/api/bookings/{booking_id}/").json()["status"] == "confirmed"


def test_the_schema_documents_the_pending_answer() -> None:
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    responses = schema["paths"]["/api/payments/"]["post"]["responses"]
    assert "pending" in responses["202"]["description"]
    assert "application/problem+json" in responses["409"]["content"]
    assert "application/problem+json" in responses["402"]["content"]
