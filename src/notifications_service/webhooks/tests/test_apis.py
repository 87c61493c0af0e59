from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from notifications_service.webhooks.models import WebhookEndpoint
from servicekit.testing import Caller

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


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com:99999/hook",
        "https://hooks.example.com:0/hook",
        "ftp://hooks.example.com/hook",
        "http://user:pw@hooks.example.com/hook",
        "https://user@hooks.example.com/hook",
        "https:///hook",
        "https://",
        "https://hooks.example.com/hook#fragment",
        "https://hooks.example.com/\r\nX-Injected: 1",
        "https://hooks.example.com/" + "a" * 2000,
        "https://[::1/hook",  # an unclosed IPv6 bracket: urlsplit raises
        5,
        True,
    ],
)
def test_incomplete_or_unusable_urls_are_400_naming_url(url: object, organizer: Caller) -> None:
    endpoint = _create(organizer)
    rows = list(WebhookEndpoint.objects.values_list("id", "url", "updated_at"))
    client = APIClient()
    for response in (
        client.post("/api/webhooks/", {"url": url}, format="json", **organizer.auth),
        client.patch(f"/api/webhooks/{endpoint['id']}", {"url": url}, format="json",
                     **organizer.auth),
    ):  # fmt: skip
        assert response.status_code == 400, response.content
        assert set(response.json()["errors"]) == {"url"}
    assert list(WebhookEndpoint.objects.values_list("id", "url", "updated_at")) == rows


def test_plain_http_only_where_private_networks_are_allowed(settings, organizer: Caller) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    response = APIClient().post(
        "/api/webhooks/", {"url": "http://hooks.example.com/hook"}, format="json", **organizer.auth
    )
    assert response.status_code == 400, response.content
    assert set(response.json()["errors"]) == {"url"}
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"description": 5}, "description"), ({"description": "a\r\nb"}, "description"),
     ({"is_active": "false"}, "is_active"), ({"is_active": 0}, "is_active")],
)  # fmt: skip
def test_wrong_types_on_update_are_400(payload: dict, field: str, organizer: Caller) -> None:
    endpoint = _create(organizer)
    response = APIClient().patch(
        f"/api/webhooks/{endpoint['id']}", payload, format="json", **organizer.auth
    )
    assert response.status_code == 400, response.content
    assert set(response.json()["errors"]) == {field}
    assert WebhookEndpoint.objects.get().is_active


@pytest.mark.parametrize("query", ["page=0", "page=x", "page_size=101"])
def test_bad_pages_of_webhooks_and_deliveries_are_400(query: str, organizer: Caller) -> None:
    endpoint = _create(organizer)
    for path in ("/api/webhooks/", f"/api/webhooks/{endpoint['id']}/deliveries"):
        response = APIClient().get(f"{path}?{query}", **organizer.auth)
        assert response.status_code == 400, response.content
        assert set(response.json()["errors"]) == {query.split("=")[0]}


@pytest.mark.parametrize("pk", ["99999999999999999999", "0", "-1"])
def test_webhook_ids_no_row_can_have_are_404(pk: str, organizer: Caller) -> None:
    for path in (f"/api/webhooks/{pk}", f"/api/webhooks/{pk}/deliveries"):
        assert APIClient().get(path, **organizer.auth).status_code == 404


def test_private_addresses_are_refused_unless_allowed(settings, organizer: Caller) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    for url in ("https://127.0.0.1/hook", "https://10.0.0.5/hook", "https://[::1]/hook"):
        response = APIClient().post("/api/webhooks/", {"url": url}, format="json", **organizer.auth)
        assert response.status_code == 400, url
        assert response.json()["type"] == "urn:problem:invalid-url"


def test_an_organizer_has_at_most_the_configured_number_of_webhooks(
    settings, organizer: Caller, new_caller
) -> None:
    settings.WEBHOOK_MAX_ENDPOINTS_PER_OWNER = 2
    first, _ = _create(organizer), _create(organizer)
    client = APIClient()
    response = client.post("/api/webhooks/", {"url": URL}, format="json", **organizer.auth)
    assert response.status_code == 409, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == "urn:problem:too-many-webhooks"
    assert WebhookEndpoint.objects.count() == 2
    _create(new_caller("organizer"))  # the cap is per organizer
    # Deleting one makes room again.
    client.delete(f"/api/webhooks/{first['id']}", **organizer.auth)
    _create(organizer)
    assert WebhookEndpoint.objects.filter(organizer_id=organizer.user_id).count() == 2


def test_the_schema_documents_the_cap_as_a_problem(organizer: Caller) -> None:
    schema = APIClient().get("/api/schema", {"format": "json"}).json()
    answer = schema["paths"]["/api/webhooks/"]["post"]["responses"]["409"]
    assert "application/problem+json" in answer["content"]
