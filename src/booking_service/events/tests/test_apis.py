from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from booking_service.events.models import Event, EventStatus
from booking_service.testing import database_rows, make_event, problem
from servicekit.outbox.models import OutboxMessage
from servicekit.testing import Caller

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def event_body(**overrides: Any) -> dict[str, Any]:
    starts = timezone.now() + dt.timedelta(days=10)
    body: dict[str, Any] = {
        "name": "Jazz Night",
        "description": "Quartet",
        "date": starts.date().isoformat(),
        "time": "20:00:00",
        "location": "Blue Room",
        "total_tickets": 120,
        "price_per_ticket": "30.00",
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize("path", ["/api/events/", "/api/events", "/api/events/create/"])
def test_organizer_creates_an_event(organizer: Caller, path: str) -> None:
    response = organizer.client().post(path, event_body(available_tickets=5), format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["organizer_id"] == str(organizer.id)
    assert data["available_tickets"] == 120  # read-only: the client's value is ignored
    assert data["price_per_ticket"] == "30.00"
    assert data["status"] == "active"
    assert OutboxMessage.objects.filter(type="event.created").count() == 1


def test_customer_cannot_create_events(customer: Caller) -> None:
    response = customer.client().post("/api/events/", event_body(), format="json")
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM
    assert not Event.objects.exists()


def test_no_or_forged_token_is_401(organizer: Caller) -> None:
    response = APIClient().post("/api/events/", event_body(), format="json")
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM
    forged = organizer.token[:-4] + ("AAAA" if not organizer.token.endswith("AAAA") else "BBBB")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")
    response = client.post("/api/events/", event_body(), format="json")
    assert response.status_code == 401
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    "overrides",
    [
        {"name": ""},
        {"total_tickets": 0},
        {"total_tickets": -5},
        {"total_tickets": 10**30},
        {"total_tickets": "many"},
        {"price_per_ticket": "-1.00"},
        {"price_per_ticket": "1.234"},
        {"price_per_ticket": "1e400"},
        {"date": "not-a-date"},
        {"time": "25:99"},
        {"date": "2001-01-01"},
        {"date": "0001-01-01", "time": "00:00"},
        {"date": "9999-12-31", "time": "23:59:59"},
    ],
)
def test_bad_event_input_is_a_4xx_problem(organizer: Caller, overrides: dict[str, Any]) -> None:
    response = organizer.client().post("/api/events/", event_body(**overrides), format="json")
    assert 400 <= response.status_code < 500, response.content
    assert response["Content-Type"] == PROBLEM
    assert not Event.objects.exists()


def test_missing_fields_malformed_json_and_wrong_content_type(organizer: Caller) -> None:
    client = organizer.client()
    response = client.post("/api/events/", {}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) >= {"name", "date", "time", "location"}
    response = client.post("/api/events/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    response = client.post(
        "/api/events/", "name=x", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert not Event.objects.exists()


def test_only_the_owner_or_an_admin_changes_an_event(
    organizer: Caller, other_organizer: Caller, admin: Caller, customer: Caller
) -> None:
    event = make_event(organizer_id=organizer.id)
    url = f"/api/events/{event.pk}/"
    for intruder in (other_organizer, customer):
        assert intruder.client().patch(url, {"name": "Mine"}, format="json").status_code == 403
        assert intruder.client().delete(url).status_code == 403
    response = organizer.client().patch(url, {"name": "Renamed"}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"
    response = admin.client().put(url, event_body(name="By admin"), format="json")
    assert response.status_code == 200, response.content
    assert OutboxMessage.objects.filter(type="event.updated").count() == 2
    event.refresh_from_db()
    assert event.name == "By admin"


def test_delete_cancels_and_event_stays_readable(organizer: Caller, customer: Caller) -> None:
    event = make_event(organizer_id=organizer.id)
    assert organizer.client().delete(f"/api/events/{event.pk}").status_code == 204
    response = APIClient().get(f"/api/events/{event.pk}/")
    assert response.status_code == 200
    assert response.json()["status"] == EventStatus.CANCELED
    assert APIClient().get("/api/events/").json()["count"] == 0


def test_unknown_event_is_a_404_problem() -> None:
    for path in ("/api/events/999999/", f"/api/events/{10**30}/"):
        response = APIClient().get(path)
        assert response.status_code == 404
        assert response["Content-Type"] == PROBLEM


def test_event_list_is_public_sorted_filtered_and_paginated() -> None:
    later = make_event(starts_in=dt.timedelta(days=5), name="Opera", location="Vienna")
    sooner = make_event(starts_in=dt.timedelta(days=2), name="Rock", location="Berlin")
    client = APIClient()
    data = client.get("/api/events/").json()
    assert [e["id"] for e in data["results"]] == [sooner.pk, later.pk]
    assert data["count"] == 2
    assert [e["id"] for e in client.get("/api/events/?q=opera").json()["results"]] == [later.pk]
    assert [e["id"] for e in client.get("/api/events/?location=berl").json()["results"]] == [
        sooner.pk
    ]
    date_from = (timezone.now() + dt.timedelta(days=4)).date().isoformat()
    assert [
        e["id"] for e in client.get(f"/api/events/?date_from={date_from}").json()["results"]
    ] == [later.pk]
    page = client.get("/api/events/?page_size=1&page=2").json()
    assert [e["id"] for e in page["results"]] == [later.pk]
    assert client.get("/api/events/?date_from=yesterday").status_code == 400
    assert client.get("/api/events/?page=99").status_code == 404


def test_event_list_runs_a_constant_number_of_queries() -> None:
    client = APIClient()
    make_event()
    with CaptureQueriesContext(connection) as one:
        assert client.get("/api/events/").status_code == 200
    for _ in range(15):
        make_event()
    with CaptureQueriesContext(connection) as many:
        response = client.get("/api/events/")
    assert response.json()["count"] == 16
    assert len(many) == len(one) <= 2


def test_token_signed_by_another_key_is_401(organizer: Caller) -> None:
    from django.conf import settings

    from servicekit.testing import TestTokenIssuer

    stranger = TestTokenIssuer(
        issuer=settings.JWT_ISSUER, audience=settings.JWT_AUDIENCE, kid="test-unknown"
    )
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {stranger.token(str(organizer.id), 'organizer')}"
    )
    response = client.post("/api/events/", event_body(), format="json")
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM
    assert not Event.objects.exists()


def test_admin_creates_an_event_for_an_organizer(admin: Caller, organizer: Caller) -> None:
    body = event_body(organizer_id=str(organizer.id))
    response = admin.client().post("/api/events/", body, format="json")
    assert response.status_code == 201
    assert response.json()["organizer_id"] == str(organizer.id)
    # An organizer cannot create events for someone else.
    response = organizer.client().post(
        "/api/events/", event_body(organizer_id=str(admin.id)), format="json"
    )
    assert response.json()["organizer_id"] == str(organizer.id)


def test_total_tickets_cannot_go_below_held_and_sold(organizer: Caller, customer: Caller) -> None:
    event = make_event(organizer_id=organizer.id, total_tickets=10)
    customer.client().post("/api/bookings/", {"event": event.pk, "tickets_booked": 4})
    url = f"/api/events/{event.pk}/"
    response = organizer.client().patch(url, {"total_tickets": 3}, format="json")
    assert response.status_code == 409
    assert response.json()["taken_tickets"] == 4
    response = organizer.client().patch(url, {"total_tickets": 6}, format="json")
    assert (response.json()["total_tickets"], response.json()["available_tickets"]) == (6, 2)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "Jazz\r\nBcc: x@example.com"}, "name"),
        ({"name": "Jazz\x0bNight"}, "name"),
        ({"name": "Jazz\x1b[2J"}, "name"),
        ({"name": "Jazz\u2028Night"}, "name"),
        ({"location": "Blue\nRoom"}, "location"),
        ({"description": "bell\x07"}, "description"),
        ({"name": 5}, "name"),
        ({"name": True}, "name"),
        ({"location": 12.5}, "location"),
        ({"total_tickets": "120"}, "total_tickets"),
        ({"total_tickets": 120.0}, "total_tickets"),
        ({"total_tickets": True}, "total_tickets"),
        ({"total_tickets": 2**40}, "total_tickets"),
        ({"organizer_id": 5}, "organizer_id"),
        ({"date": 20300101}, "date"),
    ],
)
def test_control_characters_and_wrong_types_are_400_naming_the_field(
    organizer: Caller, overrides: dict[str, Any], field: str
) -> None:
    event = make_event(organizer_id=organizer.id)
    before = database_rows()
    client = organizer.client()
    body = problem(client.post("/api/events/", event_body(**overrides), format="json"), 400)
    assert set(body["errors"]) == {field}
    if field != "organizer_id":  # set on creation only
        body = problem(client.patch(f"/api/events/{event.pk}/", overrides, format="json"), 400)
        assert set(body["errors"]) == {field}
    assert database_rows() == before


def test_a_multiline_description_is_fine(organizer: Caller) -> None:
    body = event_body(description="Doors at 7.\r\n\tSet at 8.")
    response = organizer.client().post("/api/events/", body, format="json")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"[" * 50_000, "malformed-json"),
        (b'{"name": "Jazz", "total_tickets": 1e400}', "json-number-out-of-range"),
        (b'{"total_tickets": NaN}', "malformed-json"),
        (b'{"name": "Jazz\\u0000Night"}', "json-nul-character"),
    ],
)
def test_bodies_the_parser_refuses_are_400(organizer: Caller, body: bytes, code: str) -> None:
    before = database_rows()
    response = organizer.client().post("/api/events/", body, content_type="application/json")
    assert problem(response, 400)["type"] == f"urn:problem:{code}"
    assert database_rows() == before


@pytest.mark.parametrize(
    "pk", ["99999999999999999999", str(2**63), "0", "-1", "abc", "1.5", "9" * 4000]
)
def test_ids_no_row_can_have_are_404(organizer: Caller, pk: str) -> None:
    make_event(organizer_id=organizer.id)
    before = database_rows()
    assert problem(APIClient().get(f"/api/events/{pk}/"), 404)["type"] == "urn:problem:not-found"
    problem(organizer.client().patch(f"/api/events/{pk}/", {"name": "x"}, format="json"), 404)
    problem(organizer.client().delete(f"/api/events/{pk}/"), 404)
    assert database_rows() == before


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("q=", "q"),
        ("q=a%00b", "q"),
        ("q=a%0D%0Ab", "q"),
        ("q=" + "x" * 201, "q"),
        ("location=", "location"),
        ("date_from=tomorrow", "date_from"),
        ("date_from=2030-01-02&date_to=2030-01-01", "date_to"),
        ("date_to=", "date_to"),
        ("page=0", "page"),
        ("page=abc", "page"),
        ("page_size=0", "page_size"),
        ("page_size=101", "page_size"),
    ],
)
def test_bad_list_filters_are_400_naming_them(query: str, field: str) -> None:
    make_event()
    body = problem(APIClient().get(f"/api/events/?{query}"), 400)
    assert set(body["errors"]) == {field}


def test_list_filters_within_range() -> None:
    event = make_event(name="Jazz Night")
    day = event.date.isoformat()
    response = APIClient().get(f"/api/events/?q=jazz&date_from={day}&date_to={day}")
    assert [e["id"] for e in response.json()["results"]] == [event.pk]
    problem(APIClient().get("/api/events/?page=2"), 404)


@pytest.mark.django_db
def test_a_url_past_the_limit_is_a_414_problem_here_too(settings: Any) -> None:
    # The booking service builds its middleware list from the shared one: the URL limit,
    # like the security headers and the docs page's static files, must not fall out of it.
    response = APIClient().get("/api/events/", {"q": "x" * settings.MAX_URL_LENGTH})
    assert response.status_code == 414
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == "urn:problem:uri-too-long"
