from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from booking_service.bookings.models import Booking
from booking_service.events.models import Event
from booking_service.testing import database_rows, make_event, make_resource, next_slot, problem
from servicekit.testing import Caller

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


@pytest.mark.parametrize("path", ["/api/bookings/", "/api/bookings/create/", "/api/bookings"])
def test_customer_holds_tickets(customer: Caller, path: str) -> None:
    event = make_event(total_tickets=10, price="20.00")
    response = customer.client().post(
        path,
        {"event": event.pk, "tickets_booked": 2, "user_id": "x", "status": "confirmed"},
        format="json",
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["user_id"] == str(customer.id)  # from the token, never the body
    assert data["status"] == "pending"  # never writable by the client
    assert data["amount"] == "40.00"
    assert data["expires_at"]
    event.refresh_from_db()
    assert event.available_tickets == 8


def test_customer_holds_a_slot(customer: Caller) -> None:
    resource = make_resource(price="40.00")
    start, end = next_slot(hours=2)
    response = customer.client().post(
        "/api/bookings/",
        {"resource": resource.pk, "start_time": start.isoformat(), "end_time": end.isoformat()},
        format="json",
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["kind"] == "slot"
    assert data["amount"] == "80.00"
    again = customer.client().post(
        "/api/bookings/",
        {"resource": resource.pk, "start_time": start.isoformat(), "end_time": end.isoformat()},
        format="json",
    )
    assert again.status_code == 409
    assert again["Content-Type"] == PROBLEM
    assert again.json()["type"] == "urn:problem:slot-taken"


def _bad_bodies() -> list[tuple[str, Any]]:
    start, end = next_slot()
    past = (timezone.now() - dt.timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    return [
        ("missing everything", {}),
        ("missing tickets", {"event": "EVENT"}),
        ("zero tickets", {"event": "EVENT", "tickets_booked": 0}),
        ("negative tickets", {"event": "EVENT", "tickets_booked": -3}),
        ("above maximum", {"event": "EVENT", "tickets_booked": 11}),
        ("huge tickets", {"event": "EVENT", "tickets_booked": 10**40}),
        ("string tickets", {"event": "EVENT", "tickets_booked": "two"}),
        ("float tickets", {"event": "EVENT", "tickets_booked": 1.5}),
        ("huge event id", {"event": 10**30, "tickets_booked": 1}),
        ("unknown event", {"event": 99999999, "tickets_booked": 1}),
        ("past event", {"event": "PAST", "tickets_booked": 1}),
        ("both kinds", {"event": "EVENT", "tickets_booked": 1, "resource": "RESOURCE"}),
        ("list body", [1, 2]),
        ("unknown resource", {"resource": 99999999, "start_time": start.isoformat(), "end_time": end.isoformat()}),
        ("end before start", {"resource": "RESOURCE", "start_time": end.isoformat(), "end_time": start.isoformat()}),
        ("end equals start", {"resource": "RESOURCE", "start_time": start.isoformat(), "end_time": start.isoformat()}),
        ("outside hours", {"resource": "RESOURCE", "start_time": start.replace(hour=3).isoformat(), "end_time": start.replace(hour=4).isoformat()}),
        ("past slot", {"resource": "RESOURCE", "start_time": past.isoformat(), "end_time": (past + dt.timedelta(hours=1)).isoformat()}),
        ("bad datetime", {"resource": "RESOURCE", "start_time": "tomorrow", "end_time": end.isoformat()}),
        ("missing end", {"resource": "RESOURCE", "start_time": start.isoformat()}),
        ("year 9999", {"resource": "RESOURCE", "start_time": "9999-12-31T10:00:00Z", "end_time": "9999-12-31T11:00:00Z"}),
        ("year 1", {"resource": "RESOURCE", "start_time": "0001-01-01T10:00:00+05:00", "end_time": "0001-01-01T11:00:00Z"}),
    ]  # fmt: skip


@pytest.mark.parametrize(("label", "body"), _bad_bodies(), ids=[b[0] for b in _bad_bodies()])
def test_bad_booking_input_is_a_4xx_problem_and_changes_nothing(
    customer: Caller, label: str, body: Any
) -> None:
    event = make_event(total_tickets=10)
    past = make_event(total_tickets=10)
    Event.objects.filter(pk=past.pk).update(date=timezone.now().date() - dt.timedelta(days=2))
    resource = make_resource()
    ids = {"EVENT": event.pk, "PAST": past.pk, "RESOURCE": resource.pk}
    if isinstance(body, dict):
        body = {
            key: ids.get(value, value) if isinstance(value, str) else value
            for key, value in body.items()
        }
    response = customer.client().post("/api/bookings/", body, format="json")
    assert 400 <= response.status_code < 500, response.content
    assert response["Content-Type"] == PROBLEM
    body_json = response.json()
    assert body_json["status"] == response.status_code
    assert {"type", "title", "detail"} <= set(body_json)
    if "unknown" in label:
        assert response.status_code == 404
    assert not Booking.objects.exists()
    event.refresh_from_db()
    assert event.available_tickets == 10


def test_malformed_json_wrong_content_type_and_no_token(customer: Caller) -> None:
    event = make_event()
    client = customer.client()
    response = client.post("/api/bookings/", '{"event": 1,', content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    response = client.post("/api/bookings/", f"event={event.pk}", content_type="text/plain")
    assert response.status_code == 415
    response = APIClient().post(
        "/api/bookings/", {"event": event.pk, "tickets_booked": 1}, format="json"
    )
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM
    assert not Booking.objects.exists()


def test_sold_out_is_a_409_problem(customer: Caller) -> None:
    event = make_event(total_tickets=1)
    client = customer.client()
    assert (
        client.post("/api/bookings/", {"event": event.pk, "tickets_booked": 1}).status_code == 201
    )
    response = client.post("/api/bookings/", {"event": event.pk, "tickets_booked": 1})
    assert response.status_code == 409
    assert response.json()["type"] == "urn:problem:sold-out"
    assert response.json()["available_tickets"] == 0


def test_nobody_reads_changes_or_cancels_another_users_booking(
    customer: Caller, other_customer: Caller, organizer: Caller
) -> None:
    event = make_event(total_tickets=10)
    booking_id = (
        customer.client()
        .post("/api/bookings/", {"event": event.pk, "tickets_booked": 2})
        .json()["id"]
    )
    url = f"/api/bookings/{booking_id}/"
    for intruder in (other_customer, organizer):
        client = intruder.client()
        assert client.get(url).status_code == 404
        assert client.patch(url, {"tickets_booked": 1}).status_code == 404
        assert client.delete(url).status_code == 404
        assert client.get("/api/bookings/").json()["count"] == 0
    assert customer.client().get(url).status_code == 200
    event.refresh_from_db()
    assert event.available_tickets == 8


def test_list_own_bookings_and_admin_sees_all(
    customer: Caller, other_customer: Caller, admin: Caller
) -> None:
    event = make_event()
    customer.client().post("/api/bookings/", {"event": event.pk, "tickets_booked": 1})
    other_customer.client().post("/api/bookings/", {"event": event.pk, "tickets_booked": 1})
    assert customer.client().get("/api/bookings/").json()["count"] == 1
    assert admin.client().get("/api/bookings/").json()["count"] == 2
    assert admin.client().get("/api/bookings/?status=pending").json()["count"] == 2
    assert admin.client().get("/api/bookings/?status=nonsense").status_code == 400


def test_organizer_lists_the_bookings_of_their_event(
    customer: Caller, organizer: Caller, other_organizer: Caller
) -> None:
    event = make_event(organizer_id=organizer.id)
    customer.client().post("/api/bookings/", {"event": event.pk, "tickets_booked": 3})
    mine = organizer.client().get(f"/api/bookings/?event={event.pk}").json()
    assert mine["count"] == 1
    assert mine["results"][0]["tickets_booked"] == 3
    assert other_organizer.client().get(f"/api/bookings/?event={event.pk}").json()["count"] == 0


def test_the_list_pages_newest_first_and_shows_only_what_the_caller_may_see(
    customer: Caller, other_customer: Caller, organizer: Caller, settings: Any
) -> None:
    settings.BOOKING_MAX_HELD_TICKETS = 20
    event = make_event(organizer_id=organizer.id)
    client = customer.client()
    assert client.get("/api/bookings/").json() == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }
    ids = [
        client.post("/api/bookings/", {"event": event.pk, "tickets_booked": n}).json()["id"]
        for n in (1, 2, 3)
    ]
    other_customer.client().post("/api/bookings/", {"event": event.pk, "tickets_booked": 4})
    first = client.get("/api/bookings/?page_size=2").json()
    assert (first["count"], [b["id"] for b in first["results"]]) == (3, ids[:0:-1])
    assert first["previous"] is None
    assert first["next"].endswith("/api/bookings/?page=2&page_size=2")
    second = client.get(first["next"]).json()
    assert [b["id"] for b in second["results"]] == [ids[0]]
    assert second["next"] is None
    assert client.get("/api/bookings/?page=3&page_size=2").status_code == 404
    # A customer filtering by someone else's event sees their own bookings of it only; the
    # organizer sees every booking of it.
    assert client.get(f"/api/bookings/?event={event.pk}").json()["count"] == 3
    assert organizer.client().get(f"/api/bookings/?event={event.pk}").json()["count"] == 4
    assert organizer.client().get("/api/bookings/").json()["count"] == 0


def test_patch_changes_ticket_count_and_delete_cancels(customer: Caller) -> None:
    event = make_event(total_tickets=10, price="5.00")
    client = customer.client()
    booking_id = client.post("/api/bookings/", {"event": event.pk, "tickets_booked": 2}).json()[
        "id"
    ]
    url = f"/api/bookings/{booking_id}"
    response = client.patch(url, {"tickets_booked": 4}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["tickets_booked"], response.json()["amount"]) == (4, "20.00")
    assert client.put(url, {"tickets_booked": 0}, format="json").status_code == 400
    assert client.patch(url, {"status": "confirmed"}, format="json").status_code == 400
    event.refresh_from_db()
    assert event.available_tickets == 6
    response = client.delete(url)
    assert response.status_code == 200
    assert response.json()["status"] == "canceled"
    assert client.patch(url, {"tickets_booked": 1}, format="json").status_code == 409
    event.refresh_from_db()
    assert event.available_tickets == 10
    availability = APIClient().get(f"/api/availability/?event={event.pk}").json()
    assert availability == {
        "event": event.pk,
        "total": 10,
        "available": 10,
        "held": 0,
        "sold": 0,
        "releasable": 0,
    }


def test_booking_list_runs_a_constant_number_of_queries(customer: Caller, settings: Any) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.BOOKING_MAX_HELD_TICKETS = 11
    event = make_event(total_tickets=100)
    client = customer.client()
    client.post("/api/bookings/", {"event": event.pk, "tickets_booked": 1})
    with CaptureQueriesContext(connection) as one:
        client.get("/api/bookings/")
    for _ in range(10):
        client.post("/api/bookings/", {"event": event.pk, "tickets_booked": 1})
    with CaptureQueriesContext(connection) as many:
        assert client.get("/api/bookings/").json()["count"] == 11
    assert len(one) == len(many) <= 2


@pytest.fixture
def regular_path(settings: Any) -> None:
    """Every booking through the regular view (the batched path is tested in test_fastpath)."""
    settings.BOOKING_FAST_PATH = False


def _body(event_id: int, tickets: bytes) -> bytes:
    return b'{"event": %d, "tickets_booked": %s}' % (event_id, tickets)


@pytest.mark.usefixtures("regular_path")
class TestRefusedBodies:
    @pytest.mark.parametrize(
        ("tickets", "status", "code"),
        [
            (b"[" * 50_000, 400, "malformed-json"),
            (b"[" * 40 + b"1" + b"]" * 40, 400, "json-too-deep"),
            (b"1e400", 400, "json-number-out-of-range"),
            (str(2**70).encode(), 400, "json-number-out-of-range"),
            (b"NaN", 400, "malformed-json"),
            (b"Infinity", 400, "malformed-json"),
            (b'"\\u0000"', 400, "json-nul-character"),
            (b'"\xff"', 400, "malformed-json"),
            (b'1, "x": "' + b"a" * 300_000 + b'"', 413, "body-too-large"),
        ],
    )
    @pytest.mark.parametrize("idempotency_key", [None, "key-1"])
    def test_refused_and_nothing_changes(
        self,
        customer: Caller,
        tickets: bytes,
        status: int,
        code: str,
        idempotency_key: str | None,
    ) -> None:
        event = make_event(total_tickets=10)
        before = database_rows()
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        response = customer.client().post(
            "/api/bookings/",
            _body(event.pk, tickets),
            content_type="application/json",
            headers=headers,
        )
        assert problem(response, status)["type"] == f"urn:problem:{code}"
        assert database_rows() == before


@pytest.mark.usefixtures("regular_path")
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event": "EVENT", "tickets_booked": "2"}, "tickets_booked"),
        ({"event": "EVENT", "tickets_booked": 2.0}, "tickets_booked"),
        ({"event": "EVENT", "tickets_booked": True}, "tickets_booked"),
        ({"event": "EVENT", "tickets_booked": 2**40}, "tickets_booked"),
        ({"event": "EVENT_AS_TEXT", "tickets_booked": 2}, "event"),
        ({"event": -1, "tickets_booked": 2}, "event"),
        ({"event": 0, "tickets_booked": 2}, "event"),
    ],
)
def test_wrong_types_and_ranges_are_400_naming_the_field(
    customer: Caller, body: dict[str, Any], field: str
) -> None:
    event = make_event(total_tickets=10)
    replace = {"EVENT": event.pk, "EVENT_AS_TEXT": str(event.pk)}
    payload = {key: replace.get(str(value), value) for key, value in body.items()}
    before = database_rows()
    response = customer.client().post("/api/bookings/", payload, format="json")
    assert set(problem(response, 400)["errors"]) == {field}
    assert database_rows() == before


@pytest.mark.parametrize("tickets", [2**40, "3", 0])
def test_an_update_out_of_range_is_400(customer: Caller, tickets: Any) -> None:
    event = make_event(total_tickets=10)
    client = customer.client()
    created = client.post("/api/bookings/", {"event": event.pk, "tickets_booked": 2}, format="json")
    assert created.status_code == 201
    before = database_rows()
    response = client.patch(
        f"/api/bookings/{created.json()['id']}/", {"tickets_booked": tickets}, format="json"
    )
    assert set(problem(response, 400)["errors"]) == {"tickets_booked"}
    assert database_rows() == before


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("event=abc", "event"),
        ("event=", "event"),
        ("event=99999999999999999999", "event"),
        ("resource=-5", "resource"),
        ("status=lost", "status"),
        ("page=0", "page"),
        ("page_size=1000", "page_size"),
    ],
)
def test_bad_list_filters_are_400_naming_them(customer: Caller, query: str, field: str) -> None:
    response = customer.client().get(f"/api/bookings/?{query}")
    assert set(problem(response, 400)["errors"]) == {field}


@pytest.mark.parametrize("pk", ["99999999999999999999", "0", "-1", "abc"])
def test_booking_ids_no_row_can_have_are_404(customer: Caller, pk: str) -> None:
    problem(customer.client().get(f"/api/bookings/{pk}/"), 404)
    problem(customer.client().delete(f"/api/bookings/{pk}/"), 404)
