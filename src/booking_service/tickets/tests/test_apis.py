"""The tickets API: who sees what, check-in answers, voiding, attendees, CSV and sales."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from typing import Any, cast

import pytest
from django.http import StreamingHttpResponse
from django.test import Client

from booking_service.api import reports
from booking_service.events.models import Event
from booking_service.payments.models import Payment, PaymentStatus
from booking_service.testing import make_event, make_resource, next_slot, problem
from booking_service.tickets.models import CheckIn, Ticket, TicketStatus
from booking_service.tickets.tests.conftest import hold, pay, scan, tickets_of
from servicekit.testing import Caller

pytestmark = pytest.mark.django_db

Confirmed = Callable[..., dict[str, Any]]


def add_staff(organizer: Caller, event: Event, member: Caller) -> None:
    response = organizer.client().post(
        f"/api/events/{event.pk}/staff/", {"user_id": member.user_id}, format="json"
    )
    assert response.status_code == 201, response.content


# A booking's tickets ------------------------------------------------------------------------


def test_tickets_exist_once_the_booking_is_confirmed(customer: Caller, event: Event) -> None:
    booking = hold(customer, event, 3)
    assert tickets_of(customer, booking["id"]) == []
    pay(customer, booking["id"])
    tickets = tickets_of(customer, booking["id"])
    assert [(t["number"], t["status"], t["checked_in_at"]) for t in tickets] == [
        (1, "valid", None),
        (2, "valid", None),
        (3, "valid", None),
    ]
    assert set(tickets[0]) == {"id", "number", "code", "status", "checked_in_at"}
    assert len({t["code"] for t in tickets}) == 3


def test_a_slot_booking_has_no_tickets(customer: Caller) -> None:
    resource = make_resource()
    start, end = next_slot()
    response = customer.client().post(
        "/api/bookings/",
        {"resource": resource.pk, "start_time": start.isoformat(), "end_time": end.isoformat()},
        format="json",
    )
    booking_id = response.json()["id"]
    pay(customer, booking_id)
    assert tickets_of(customer, booking_id) == []


def test_tickets_are_seen_by_owner_organizer_and_admin_only(
    confirmed: Confirmed,
    organizer: Caller,
    admin: Caller,
    other_customer: Caller,
    other_organizer: Caller,
    new_caller: Callable[[str], Caller],
    event: Event,
) -> None:
    booking_id = confirmed()["booking"]["id"]
    for caller in (organizer, admin):
        assert len(tickets_of(caller, booking_id)) == 2
    staff = new_caller("customer")
    add_staff(organizer, event, staff)
    for caller in (other_customer, other_organizer, staff):
        response = caller.client().get(f"/api/bookings/{booking_id}/tickets/")
        assert problem(response, 404)["type"] == "urn:problem:booking-not-found"
    assert problem(organizer.client().get("/api/bookings/999999/tickets/"), 404)
    assert problem(Client().get(f"/api/bookings/{booking_id}/tickets/"), 401)


# Door staff ---------------------------------------------------------------------------------


def test_the_organizer_names_and_removes_door_staff(
    organizer: Caller, event: Event, new_caller: Callable[[str], Caller]
) -> None:
    member = new_caller("customer")
    client = organizer.client()
    add_staff(organizer, event, member)
    add_staff(organizer, event, member)  # naming again changes nothing
    listed = client.get(f"/api/events/{event.pk}/staff/").json()
    assert [(s["event"], s["user_id"]) for s in listed] == [(event.pk, member.user_id)]
    assert client.delete(f"/api/events/{event.pk}/staff/{member.user_id}/").status_code == 204
    assert client.get(f"/api/events/{event.pk}/staff/").json() == []
    assert client.delete(f"/api/events/{event.pk}/staff/{member.user_id}/").status_code == 204


def test_staff_endpoints_are_the_organizers_and_admins(
    organizer: Caller,
    admin: Caller,
    customer: Caller,
    other_organizer: Caller,
    event: Event,
    new_caller: Callable[[str], Caller],
) -> None:
    member = new_caller("customer")
    add_staff(organizer, event, member)
    assert admin.client().get(f"/api/events/{event.pk}/staff/").status_code == 200
    path = f"/api/events/{event.pk}/staff/"
    for caller in (customer, other_organizer, member):
        client = caller.client()
        assert problem(client.get(path), 404)["type"] == "urn:problem:event-not-found"
        body = {"user_id": caller.user_id}
        assert problem(client.post(path, body, format="json"), 404)
        assert problem(client.delete(f"{path}{member.user_id}/"), 404)
    assert problem(organizer.client().post(path, {"user_id": "nope"}, format="json"), 400)
    dashes = "-" * 36
    assert problem(organizer.client().delete(f"{path}{dashes}/"), 404)


# Check-in -----------------------------------------------------------------------------------


def test_first_scan_201_same_nonce_same_answer_other_nonce_409(
    confirmed: Confirmed, organizer: Caller, event: Event
) -> None:
    made = confirmed()
    ticket = made["tickets"][0]
    first = scan(organizer, ticket["code"], "scanner-1-0001")
    assert first.status_code == 201, first.content
    body = first.json()
    assert body == {
        "ticket": ticket["id"],
        "booking": made["booking"]["id"],
        "event": event.pk,
        "number": 1,
        "checked_in_at": body["checked_in_at"],
        "nonce": "scanner-1-0001",
    }
    again = scan(organizer, ticket["code"], "scanner-1-0001")
    assert (again.status_code, again.json()) == (201, body)
    assert CheckIn.objects.filter(ticket_id=ticket["id"]).count() == 1
    refused = problem(scan(organizer, ticket["code"], "scanner-2-0001"), 409)
    assert refused["type"] == "urn:problem:already-checked-in"
    assert refused["checked_in_at"] == body["checked_in_at"]
    assert f"already checked in at {body['checked_in_at']}" in refused["detail"]
    listed = tickets_of(organizer, made["booking"]["id"])
    assert [(t["status"], t["checked_in_at"]) for t in listed] == [
        ("checked_in", body["checked_in_at"]),
        ("valid", None),
    ]


def test_who_may_scan(
    confirmed: Confirmed,
    organizer: Caller,
    admin: Caller,
    customer: Caller,
    other_organizer: Caller,
    new_caller: Callable[[str], Caller],
    event: Event,
) -> None:
    codes = [t["code"] for t in confirmed(tickets=3)["tickets"]]
    staff_here = new_caller("customer")
    add_staff(organizer, event, staff_here)
    staff_elsewhere = new_caller("customer")
    add_staff(organizer, make_event(organizer_id=organizer.id), staff_elsewhere)
    for caller in (customer, other_organizer, staff_elsewhere):
        assert problem(scan(caller, codes[0]), 404)["type"] == "urn:problem:ticket-not-found"
        summary = caller.client().get(f"/api/events/{event.pk}/checkins/summary/")
        assert problem(summary, 404)
    for caller, code in zip((organizer, admin, staff_here), codes, strict=True):
        assert scan(caller, code).status_code == 201
    summary = staff_here.client().get(f"/api/events/{event.pk}/checkins/summary/")
    assert summary.json() == {"checked_in": 3, "expected": 3}


def test_staff_scan_but_do_not_read_attendees_or_sales(
    confirmed: Confirmed, organizer: Caller, event: Event, new_caller: Callable[[str], Caller]
) -> None:
    confirmed()
    member = new_caller("customer")
    add_staff(organizer, event, member)
    client = member.client()
    for path in ("attendees/", "attendees.csv", "sales/", "staff/"):
        assert problem(client.get(f"/api/events/{event.pk}/{path}"), 404)


def test_bad_check_in_input_is_400(organizer: Caller) -> None:
    client = organizer.client()
    for body in (
        {},
        {"code": "x"},
        {"code": "x", "nonce": "short"},
        {"code": "x", "nonce": "n" * 65},
        {"code": "x" * 3000, "nonce": "n" * 10},
        {"code": "a\u0000b", "nonce": "n" * 10},
        {"code": 7, "nonce": "n" * 10},
    ):
        assert problem(client.post("/api/checkins/", body, format="json"), 400), body


# Voiding --------------------------------------------------------------------------------------


def test_customer_cancel_voids_the_tickets_and_refunds(
    confirmed: Confirmed, customer: Caller, organizer: Caller
) -> None:
    made = confirmed()
    booking_id = made["booking"]["id"]
    assert customer.client().delete(f"/api/bookings/{booking_id}/").json()["status"] == "canceled"
    assert [t["status"] for t in tickets_of(customer, booking_id)] == ["void", "void"]
    assert Payment.objects.get(booking_id=booking_id).status == PaymentStatus.REFUNDED
    body = problem(scan(organizer, made["tickets"][0]["code"]), 409)
    assert body["type"] == "urn:problem:ticket-void"


def test_admin_cancel_voids_checked_in_tickets_too(
    confirmed: Confirmed, admin: Caller, organizer: Caller
) -> None:
    made = confirmed()
    nonce = uuid.uuid4().hex
    assert scan(organizer, made["tickets"][0]["code"], nonce).status_code == 201
    admin.client().delete(f"/api/bookings/{made['booking']['id']}/")
    assert set(Ticket.objects.values_list("status", flat=True)) == {TicketStatus.VOID}
    assert problem(scan(organizer, made["tickets"][0]["code"], nonce), 409)["type"] == (
        "urn:problem:ticket-void"
    )


def test_event_cancel_voids_every_ticket(
    confirmed: Confirmed, organizer: Caller, event: Event, other_customer: Caller
) -> None:
    first = confirmed()
    second = confirmed(tickets=1, caller=other_customer)
    assert organizer.client().delete(f"/api/events/{event.pk}/").status_code == 204
    for made in (first, second):
        assert {t["status"] for t in tickets_of(organizer, made["booking"]["id"])} == {"void"}
        assert problem(scan(organizer, made["tickets"][0]["code"]), 409)["type"] == (
            "urn:problem:ticket-void"
        )
    assert organizer.client().get(f"/api/events/{event.pk}/checkins/summary/").json() == {
        "checked_in": 0,
        "expected": 0,
    }


# Attendees and sales --------------------------------------------------------------------------


def test_attendees_list_valid_and_checked_in_tickets(
    confirmed: Confirmed, customer: Caller, organizer: Caller, event: Event, admin: Caller
) -> None:
    kept = confirmed(tickets=2)
    dropped = confirmed(tickets=1)
    customer.client().delete(f"/api/bookings/{dropped['booking']['id']}/")
    scan(organizer, kept["tickets"][1]["code"])
    page = organizer.client().get(f"/api/events/{event.pk}/attendees/?page_size=1").json()
    assert page["count"] == 2
    assert page["next"] is not None
    rows = admin.client().get(f"/api/events/{event.pk}/attendees/").json()["results"]
    assert [(r["ticket"], r["number"], r["booking"], r["user_id"], r["status"]) for r in rows] == [
        (kept["tickets"][0]["id"], 1, kept["booking"]["id"], customer.user_id, "valid"),
        (kept["tickets"][1]["id"], 2, kept["booking"]["id"], customer.user_id, "checked_in"),
    ]
    assert rows[0]["checked_in_at"] is None
    assert rows[1]["checked_in_at"] is not None


def test_attendees_csv_is_streamed_text_csv_with_a_header(
    confirmed: Confirmed, organizer: Caller, event: Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reports, "CSV_CHUNK", 2)  # more rows than a chunk: every chunk is read
    made = [confirmed(tickets=2), confirmed(tickets=3)]
    response = organizer.client().get(
        f"/api/events/{event.pk}/attendees.csv", HTTP_ACCEPT="text/csv"
    )
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    text = cast(StreamingHttpResponse, response).getvalue().decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["ticket", "number", "booking", "user_id", "status", "checked_in_at"]
    expected = [t["id"] for m in made for t in m["tickets"]]
    assert [row[0] for row in rows[1:]] == expected
    assert problem(Client().get(f"/api/events/{event.pk}/attendees.csv"), 401)


def test_sales(confirmed: Confirmed, customer: Caller, organizer: Caller, event: Event) -> None:
    confirmed(tickets=2)
    canceled = confirmed(tickets=1)
    customer.client().delete(f"/api/bookings/{canceled['booking']['id']}/")
    held = hold(customer, event, 3)
    sales = organizer.client().get(f"/api/events/{event.pk}/sales/").json()
    assert {k: sales[k] for k in ("total", "available", "held", "sold", "revenue", "currency")} == {
        "total": 20,
        "available": 15,
        "held": 3,
        "sold": 2,
        "revenue": "30.00",
        "currency": "USD",
    }
    assert 1 <= len(sales["series"]) <= 200
    last = sales["series"][-1]
    assert (last["sold"], last["held"], last["available"]) == (2, 3, 15)
    assert all(p["sold"] + p["held"] + p["available"] == 20 for p in sales["series"])
    assert [b["id"] for b in sales["recent"]] == [
        held["id"],
        canceled["booking"]["id"],
        sales["recent"][2]["id"],
    ]
    assert sales["recent"][0] == customer.client().get(f"/api/bookings/{held['id']}/").json()
