from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from notifications_service.notifications.models import EmailDelivery, Notification
from notifications_service.notifications.services import notification_create
from servicekit.testing import Caller

pytestmark = pytest.mark.django_db


def _notify(user_id: str, title: str = "Hello") -> Notification:
    return notification_create(user_id=user_id, kind="message", title=title, body="Body")


def _is_problem(response, status: int) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == status


def test_list_shows_only_own_notifications_newest_first(
    customer: Caller, other_customer: Caller
) -> None:
    first = _notify(customer.user_id, "first")
    second = _notify(customer.user_id, "second")
    _notify(other_customer.user_id, "not yours")
    response = APIClient().get("/api/notifications/", **customer.auth)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [item["id"] for item in body["results"]] == [second.pk, first.pk]
    assert body["results"][0]["is_read"] is False


def test_list_is_paginated_and_filters_unread(customer: Caller) -> None:
    for n in range(5):
        _notify(customer.user_id, f"n{n}")
    client = APIClient()
    page = client.get("/api/notifications?page_size=2&page=2", **customer.auth).json()
    assert page["count"] == 5
    assert len(page["results"]) == 2
    assert page["next"]
    assert page["previous"]
    client.post("/api/notifications/read-all", **customer.auth)
    assert client.get("/api/notifications/?unread=true", **customer.auth).json()["count"] == 0
    _is_problem(client.get("/api/notifications/?unread=perhaps", **customer.auth), 400)
    _is_problem(client.get("/api/notifications/?page=99", **customer.auth), 404)


def test_mark_read_and_read_all(customer: Caller) -> None:
    one, two = _notify(customer.user_id), _notify(customer.user_id)
    client = APIClient()
    response = client.post(f"/api/notifications/{one.pk}/read/", **customer.auth)
    assert response.status_code == 200
    assert response.json()["is_read"] is True
    again = client.post(f"/api/notifications/{one.pk}/read", **customer.auth)
    assert again.json()["read_at"] == response.json()["read_at"]
    assert client.post("/api/notifications/read-all/", **customer.auth).json() == {"marked": 1}
    two.refresh_from_db()
    assert two.read_at is not None


def test_another_users_notification_is_not_found(customer: Caller, other_customer: Caller) -> None:
    theirs = _notify(other_customer.user_id)
    client = APIClient()
    _is_problem(client.get(f"/api/notifications/{theirs.pk}", **customer.auth), 404)
    _is_problem(client.post(f"/api/notifications/{theirs.pk}/read", **customer.auth), 404)
    theirs.refresh_from_db()
    assert theirs.read_at is None
    assert client.get(f"/api/notifications/{theirs.pk}/", **other_customer.auth).status_code == 200


def test_ids_beyond_the_database_range_are_not_found(customer: Caller, organizer: Caller) -> None:
    huge = "9" * 30
    _is_problem(APIClient().get(f"/api/notifications/{huge}", **customer.auth), 404)
    _is_problem(APIClient().post(f"/api/notifications/{huge}/read", **customer.auth), 404)
    _is_problem(APIClient().get(f"/api/webhooks/{huge}", **organizer.auth), 404)


def test_anonymous_callers_are_refused() -> None:
    _is_problem(APIClient().get("/api/notifications/"), 401)
    _is_problem(APIClient().post("/api/notification", {"user_id": "x"}), 401)
    _is_problem(
        APIClient().get("/api/notifications/", HTTP_AUTHORIZATION="Bearer not-a-token"), 401
    )


@pytest.mark.parametrize("role", ["service", "admin"])
def test_service_and_admin_can_send_a_notification(
    role: str,
    new_caller,
    customer: Caller,
) -> None:
    sender = new_caller(role)
    response = APIClient().post(
        "/api/notification/",
        {"user_id": customer.user_id, "title": "Doors open at 19:00", "body": "See you."},
        format="json",
        **sender.auth,
    )
    assert response.status_code == 201, response.content
    notification = Notification.objects.get(pk=response.json()["id"])
    assert notification.user_id == customer.user_id
    assert EmailDelivery.objects.filter(notification=notification).exists()
    listed = APIClient().get("/api/notifications/", **customer.auth).json()
    assert listed["results"][0]["title"] == "Doors open at 19:00"


def test_a_retried_send_with_the_same_event_id_sends_once(service: Caller) -> None:
    payload = {"user_id": "u1", "title": "t", "body": "b", "event_id": str(uuid.uuid4())}
    first = APIClient().post("/api/notification", payload, format="json", **service.auth)
    again = APIClient().post("/api/notification", payload, format="json", **service.auth)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert first.json()["source_event_id"] == payload["event_id"]
    assert EmailDelivery.objects.count() == 1


def test_without_email_no_delivery_is_queued(service: Caller) -> None:
    response = APIClient().post(
        "/api/notification",
        {"user_id": "u1", "title": "t", "body": "b", "send_email": False},
        format="json",
        **service.auth,
    )
    assert response.status_code == 201
    assert not EmailDelivery.objects.exists()


@pytest.mark.parametrize("role", ["customer", "organizer"])
def test_people_cannot_send_notifications(role: str, new_caller) -> None:
    response = APIClient().post(
        "/api/notification",
        {"user_id": str(uuid.uuid4()), "title": "t", "body": "b"},
        format="json",
        **new_caller(role).auth,
    )
    _is_problem(response, 403)
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"user_id": "u", "title": "", "body": "b"},
        {"user_id": "u", "title": "t" * 201, "body": "b"},
        {"user_id": "u", "title": "t", "body": "b", "email": "not-an-address"},
        {"user_id": "u", "title": "t", "body": "b", "data": [1, 2]},
        {"user_id": "u", "title": "t", "body": "b", "kind": "has spaces"},
        {"user_id": ["u"], "title": "t", "body": "b"},
        {"user_id": 42, "title": "t", "body": "b"},
        {"user_id": "u", "title": 5, "body": "b"},
        {"user_id": "u", "title": True, "body": "b"},
        {"user_id": "u", "title": "Hi\r\nBcc: x@example.com", "body": "b"},
        {"user_id": "u", "title": "Hi\x1b]0;x\x07", "body": "b"},
        {"user_id": "u", "title": "t", "body": "bell\x07"},
        {"user_id": "u", "title": "t", "body": "b", "send_email": "yes"},
        {"user_id": "u", "title": "t", "body": "b", "send_email": 1},
        {"user_id": "u", "title": "t", "body": "b", "event_id": 5},
        {"user_id": "u", "title": "t", "body": "b", "email": "a@example.com\r\nBcc: b@x.org"},
        {"user_id": "u", "title": "t", "body": "b", "kind": 5},
    ],
)
def test_bad_input_is_a_problem_and_changes_nothing(payload: dict, service: Caller) -> None:
    response = APIClient().post("/api/notification", payload, format="json", **service.auth)
    _is_problem(response, 400)
    assert "errors" in response.json()
    assert not Notification.objects.exists()
    assert not EmailDelivery.objects.exists()


def test_a_multiline_body_is_fine(service: Caller) -> None:
    payload = {"user_id": "u", "title": "t", "body": "line\r\nline\ttab", "send_email": False}
    response = APIClient().post("/api/notification", payload, format="json", **service.auth)
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"[" * 50_000, "malformed-json"),
        (b'{"user_id": "u", "title": "t", "body": "b", "data": {"n": 1e400}}',
         "json-number-out-of-range"),
        (b'{"user_id": "u", "title": "t", "body": "b", "data": {"n": NaN}}', "malformed-json"),
        (b'{"user_id": "u", "title": "t", "body": "b\\u0000"}', "json-nul-character"),
        (b'{"user_id": "u", "title": "t", "body": "b", "data": ' + b"[" * 40 + b"]" * 40 + b"}",
         "json-too-deep"),
    ],
)  # fmt: skip
def test_bodies_the_parser_refuses_are_400(service: Caller, body: bytes, code: str) -> None:
    response = APIClient().post(
        "/api/notification", body, content_type="application/json", **service.auth
    )
    _is_problem(response, 400)
    assert response.json()["type"] == f"urn:problem:{code}"
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("unread=", "unread"),
        ("unread=maybe", "unread"),
        ("unread=1", "unread"),
        ("page=0", "page"),
        ("page=abc", "page"),
        ("page_size=101", "page_size"),
    ],
)
def test_bad_list_parameters_are_400_naming_them(customer: Caller, query: str, field: str) -> None:
    response = APIClient().get(f"/api/notifications/?{query}", **customer.auth)
    _is_problem(response, 400)
    assert set(response.json()["errors"]) == {field}


@pytest.mark.parametrize("pk", ["99999999999999999999", "0", "-1", "abc"])
def test_notification_ids_no_row_can_have_are_404(customer: Caller, pk: str) -> None:
    _notify(customer.user_id)
    _is_problem(APIClient().get(f"/api/notifications/{pk}/", **customer.auth), 404)
    _is_problem(APIClient().post(f"/api/notifications/{pk}/read", **customer.auth), 404)
    assert not Notification.objects.filter(read_at__isnull=False).exists()


def test_malformed_json_is_a_problem(service: Caller) -> None:
    response = APIClient().post(
        "/api/notification", "{oops", content_type="application/json", **service.auth
    )
    _is_problem(response, 400)


def test_openapi_schema_lists_the_endpoints() -> None:
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/api/notification", "/api/notifications", "/api/webhooks"):
        assert any(p.rstrip("/") == path for p in paths), (path, list(paths))


def test_ready_reports_deliveries_and_consumers(admin: Caller) -> None:
    response = APIClient().get("/health/ready", **admin.auth)  # the details are for admins
    body = response.json()
    assert response.status_code == 200, body
    assert body["checks"]["email"]["data"]["pending"] == 0
    assert "dead_letters" in body["checks"]["consumers"]["data"]
