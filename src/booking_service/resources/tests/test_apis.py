from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from rest_framework.test import APIClient

from booking_service.bookings.models import Booking
from booking_service.resources.models import Resource
from booking_service.testing import database_rows, make_resource, next_slot, problem
from servicekit.testing import Caller

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def resource_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Room 101",
        "description": "Meeting room",
        "location": "HQ",
        "timezone": "Europe/Berlin",
        "opening_time": "09:00",
        "closing_time": "18:00",
        "slot_minutes": 30,
        "price_per_slot": "15.00",
    }
    body.update(overrides)
    return body


def test_organizer_creates_and_manages_a_resource(
    organizer: Caller, other_organizer: Caller, customer: Caller
) -> None:
    response = organizer.client().post("/api/resources/", resource_body(), format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["organizer_id"] == str(organizer.id)
    assert data["timezone"] == "Europe/Berlin"
    url = f"/api/resources/{data['id']}"
    assert APIClient().get(url).status_code == 200
    assert APIClient().get("/api/resources/").json()["count"] == 1
    for intruder in (other_organizer, customer):
        assert intruder.client().patch(url, {"name": "x"}, format="json").status_code == 403
        assert intruder.client().delete(url).status_code == 403
    response = organizer.client().patch(url, {"closing_time": "20:00"}, format="json")
    assert response.status_code == 200
    assert response.json()["closing_time"] == "20:00:00"
    response = organizer.client().patch(url, {"closing_time": "08:00"}, format="json")
    assert response.status_code == 422
    assert organizer.client().delete(url).status_code == 204
    assert APIClient().get(url).status_code == 404


def test_customer_cannot_create_resources(customer: Caller) -> None:
    response = customer.client().post("/api/resources/", resource_body(), format="json")
    assert response.status_code == 403
    assert not Resource.objects.exists()


@pytest.mark.parametrize(
    "overrides",
    [
        {"timezone": "Mars/Olympus"},
        {"opening_time": "18:00", "closing_time": "09:00"},
        {"slot_minutes": 0},
        {"slot_minutes": 10**12},
        {"price_per_slot": "-1"},
        {"name": ""},
    ],
)
def test_bad_resource_input_is_a_4xx_problem(organizer: Caller, overrides: dict[str, Any]) -> None:
    response = organizer.client().post("/api/resources/", resource_body(**overrides), format="json")
    assert 400 <= response.status_code < 500
    assert response["Content-Type"] == PROBLEM
    assert not Resource.objects.exists()


def test_availability_lists_free_intervals_within_opening_hours(customer: Caller) -> None:
    resource = make_resource(opening=dt.time(8), closing=dt.time(12), slot_minutes=60)
    start, end = next_slot(hour=9, hours=1)
    assert (
        customer.client()
        .post(
            "/api/bookings/",
            {"resource": resource.pk, "start_time": start.isoformat(), "end_time": end.isoformat()},
            format="json",
        )
        .status_code
        == 201
    )
    day_start = start.replace(hour=0)
    response = APIClient().get(
        "/api/availability/",
        {
            "resource": str(resource.pk),
            "start": day_start.isoformat(),
            "end": (day_start + dt.timedelta(days=1)).isoformat(),
        },
    )
    assert response.status_code == 200, response.content
    free = [(f["start"], f["end"]) for f in response.json()["free"]]
    assert free == [
        (start.replace(hour=8).isoformat().replace("+00:00", "Z"), start.isoformat().replace("+00:00", "Z")),
        (end.isoformat().replace("+00:00", "Z"), start.replace(hour=12).isoformat().replace("+00:00", "Z")),
    ]  # fmt: skip


def test_expired_holds_do_not_show_as_busy(customer: Caller) -> None:
    resource = make_resource(opening=dt.time(8), closing=dt.time(10), slot_minutes=60)
    start, end = next_slot(hour=8, hours=2)
    customer.client().post(
        "/api/bookings/",
        {"resource": resource.pk, "start_time": start.isoformat(), "end_time": end.isoformat()},
        format="json",
    )
    params = {"resource": str(resource.pk), "start": start.isoformat(), "end": end.isoformat()}
    assert APIClient().get("/api/availability/", params).json()["free"] == []
    Booking.objects.update(expires_at=start - dt.timedelta(days=5))
    assert len(APIClient().get("/api/availability/", params).json()["free"]) == 1


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?event=1&resource=1",
        "?resource=1",
        "?resource=abc&start=2030-01-01T00:00Z&end=2030-01-02T00:00Z",
        "?resource=RES&start=2030-01-02T00:00Z&end=2030-01-01T00:00Z",
        "?resource=RES&start=2030-01-01T00:00Z&end=2030-06-01T00:00Z",
        "?event=999999",
        "?resource=RES&start=9999-12-30T00:00Z&end=9999-12-31T23:00Z",
        "?resource=RES&start=0001-01-01T00:00Z&end=0001-01-02T00:00Z",
        "?resource=999999&start=2030-01-01T00:00Z&end=2030-01-02T00:00Z",
    ],
)
def test_bad_availability_queries_are_4xx(query: str) -> None:
    resource = make_resource()
    response = APIClient().get("/api/availability/" + query.replace("RES", str(resource.pk)))
    assert 400 <= response.status_code < 500
    assert response["Content-Type"] == PROBLEM


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"timezone": "America"}, "timezone"),
        ({"timezone": "../etc/passwd"}, "timezone"),
        ({"timezone": "/usr/share/zoneinfo/UTC"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"timezone": "localtime"}, "timezone"),
        ({"timezone": 0}, "timezone"),
        ({"name": "Room\r\n101"}, "name"),
        ({"name": "Room\x7f"}, "name"),
        ({"name": 101}, "name"),
        ({"location": "HQ\x1f"}, "location"),
        ({"slot_minutes": "30"}, "slot_minutes"),
        ({"slot_minutes": 2**70}, None),
    ],
)
def test_bad_resource_input_is_400_naming_the_field(
    organizer: Caller, overrides: dict[str, Any], field: str | None
) -> None:
    resource = make_resource(organizer_id=organizer.id)
    before = database_rows()
    client = organizer.client()
    for response in (
        client.post("/api/resources/", resource_body(**overrides), format="json"),
        client.patch(f"/api/resources/{resource.pk}/", overrides, format="json"),
    ):
        body = problem(response, 400)
        if field is not None:
            assert set(body["errors"]) == {field}
        else:  # refused by the parser
            assert body["type"] == "urn:problem:json-number-out-of-range"
    assert database_rows() == before


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("event=99999999999999999999", "event"),
        ("event=abc", "event"),
        ("event=", "event"),
        ("resource=RES&start=2030-01-02T00:00Z&end=2030-01-01T00:00Z", "end"),
        ("resource=RES&start=2030-01-01T00:00Z&end=2030-01-01T00:00Z", "end"),
        ("resource=RES&start=2030-01-01T00:00Z&end=2030-03-01T00:00Z", "end"),
        ("resource=RES&start=2030-01-01T00:00Z&end=later", "end"),
        ("resource=-1&start=2030-01-01T00:00Z&end=2030-01-02T00:00Z", "resource"),
    ],
)
def test_bad_availability_queries_are_400_naming_the_field(query: str, field: str) -> None:
    resource = make_resource()
    response = APIClient().get("/api/availability/?" + query.replace("RES", str(resource.pk)))
    assert set(problem(response, 400)["errors"]) == {field}


@pytest.mark.parametrize("pk", ["99999999999999999999", "0", "-1", "abc"])
def test_resource_ids_no_row_can_have_are_404(pk: str) -> None:
    problem(APIClient().get(f"/api/resources/{pk}/"), 404)
