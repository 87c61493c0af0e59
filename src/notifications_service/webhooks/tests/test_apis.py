from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from notifications_service.testing import Caller
from notifications_service.webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/hook"


@pytest.fixture(autouse=True)
def _allow_local(settings) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True


def _create(caller: Caller, **payload: object) -> dict:
    response = APIClient().post(
        "/api/webhooks/", {"url": URL, **payload}, format="json", **caller.auth
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_organizer_registers_a_webhook_and_sees_the_secret_once(organizer: Caller) -> None:
    created = _create(organizer, event_types=["booking.confirmed"], description="shop")
    assert created["secret"].startswith("whsec_")
    assert created["organizer_id"] == organizer.user_id
    client = APIClient()
    detail = client.get(f"/api/webhooks/{created['id']}", **organizer.auth).json()
    assert "secret" not in detail
    listed = client.get("/api/webhooks/", **organizer.auth).json()
    assert listed["count"] == 1
    assert "secret" not in listed["results"][0]
    rotated = client.post(f"/api/webhooks/{created['id']}/rotate-secret", **organizer.auth)
    assert rotated.status_code == 200
    assert rotated.json()["secret"] not in ("", created["secret"])


def test_update_and_delete(organizer: Caller) -> None:
    created = _create(organizer)
    client = APIClient()
    response = client.patch(
        f"/api/webhooks/{created['id']}/",
        {"is_active": False, "event_types": ["payment.succeeded"]},
        format="json",
        **organizer.auth,
    )
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert response.json()["event_types"] == ["payment.succeeded"]
    assert client.delete(f"/api/webhooks/{created['id']}", **organizer.auth).status_code == 204
    assert not WebhookEndpoint.objects.exists()


def test_other_organizers_get_404_admins_see_everything(
    organizer: Caller,
    new_caller,
    admin: Caller,
) -> None:
    created = _create(organizer)
    other = new_caller("organizer")
    client = APIClient()
    for method in ("get", "patch", "delete"):
        response = getattr(client, method)(
            f"/api/webhooks/{created['id']}", {}, format="json", **other.auth
        )
        assert response.status_code == 404, method
        assert response["Content-Type"] == "application/problem+json"
    assert client.get("/api/webhooks/", **other.auth).json()["count"] == 0
    assert client.get(f"/api/webhooks/{created['id']}/deliveries", **other.auth).status_code == 404
    assert client.get(f"/api/webhooks/{created['id']}", **admin.auth).status_code == 200
    assert WebhookEndpoint.objects.count() == 1


@pytest.mark.parametrize("role", ["customer", "service"])
def test_only_organizers_and_admins(role: str, new_caller) -> None:
    response = APIClient().post(
        "/api/webhooks/", {"url": URL}, format="json", **new_caller(role).auth
    )
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    "payload",
    [
        {"url": "ftp://example.com/x"},
        {"url": "not a url"},
        {"url": URL, "event_types": ["user.registered"]},
        {"url": URL, "event_types": "booking.confirmed"},
        {},
    ],
)
def test_bad_input(payload: dict, organizer: Caller) -> None:
    response = APIClient().post("/api/webhooks/", payload, format="json", **organizer.auth)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert not WebhookEndpoint.objects.exists()


def test_private_addresses_are_refused_unless_allowed(settings, organizer: Caller) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    for url in ("https://127.0.0.1/hook", "https://10.0.0.5/hook", "https://[::1]/hook"):
        response = APIClient().post("/api/webhooks/", {"url": url}, format="json", **organizer.auth)
        assert response.status_code == 400, url
        assert response.json()["type"] == "urn:problem:invalid-url"
