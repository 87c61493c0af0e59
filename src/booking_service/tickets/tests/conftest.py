"""Fixtures of the tickets tests: confirmed bookings made the way customers make them
(a hold through the API, paid with the sandbox's `tok_visa`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from booking_service.events.models import Event
from booking_service.testing import make_event
from servicekit.testing import Caller


def hold(caller: Caller, event: Event, tickets: int = 2) -> dict[str, Any]:
    response = caller.client().post(
        "/api/bookings/", {"event": event.pk, "tickets_booked": tickets}, format="json"
    )
    assert response.status_code == 201, response.content
    return dict(response.json())


def pay(caller: Caller, booking_id: int) -> None:
    response = caller.client().post(
        "/api/payments/", {"booking": booking_id, "payment_token": "tok_visa"}, format="json"
    )
    assert response.status_code == 201, response.content


def tickets_of(caller: Caller, booking_id: int) -> list[dict[str, Any]]:
    response = caller.client().get(f"/api/bookings/{booking_id}/tickets/")
    assert response.status_code == 200, response.content
    return list(response.json())


@pytest.fixture
def event(organizer: Caller) -> Event:
    return make_event(organizer_id=organizer.id, total_tickets=20, price="15.00")


@pytest.fixture
def confirmed(customer: Caller, event: Event) -> Callable[..., dict[str, Any]]:
    """`confirmed(tickets=2)`: a paid booking of `event` by `customer`, with its tickets."""

    def make(tickets: int = 2, caller: Caller | None = None) -> dict[str, Any]:
        buyer = caller or customer
        booking = hold(buyer, event, tickets)
        pay(buyer, booking["id"])
        return {"booking": booking, "tickets": tickets_of(buyer, booking["id"])}

    return make


def scan(caller: Caller, code: str, nonce: str | None = None) -> Any:
    return caller.client().post(
        "/api/checkins/", {"code": code, "nonce": nonce or uuid.uuid4().hex}, format="json"
    )
