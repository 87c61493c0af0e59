from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from servicekit.outbox.models import OutboxMessage
from users_service.accounts.models import Role, User
from users_service.conftest import PASSWORD, login_client

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def register(api: APIClient, **overrides: object) -> Any:
    body = {"name": "Grace", "email": "grace@example.com", "password": PASSWORD, **overrides}
    return api.post("/api/users/register", body, format="json")


def assert_problem(response: Any, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    return body


class TestRegister:
    def test_creates_a_customer_and_emits_user_registered(self, api: APIClient) -> None:
        response = register(api)
        assert response.status_code == 201
        body = response.json()
        assert set(body) == {"id", "name", "email", "role", "created_at", "updated_at"}
        assert body["role"] == "customer"
        user = User.objects.get(pk=body["id"])
        assert user.password.startswith("argon2$argon2id$")
        message = OutboxMessage.objects.get(type="user.registered")
        assert message.data == {
            "user_id": body["id"],
            "name": "Grace",
            "email": "grace@example.com",
            "role": "customer",
        }

    def test_organizer_may_self_register(self, api: APIClient) -> None:
        response = register(api, role="organizer")
        assert response.status_code == 201
        assert response.json()["role"] == "organizer"

    def test_admin_role_is_refused(self, api: APIClient) -> None:
        body = assert_problem(register(api, role="admin"), 400)
        assert "role" in body["errors"]
        assert not User.objects.exists()

    def test_server_fields_are_not_mass_assignable(self, api: APIClient) -> None:
        forced_id = str(uuid.uuid4())
        response = register(api, id=forced_id, created_at="2000-01-01T00:00:00Z", is_active=False)
        assert response.status_code == 201
        body = response.json()
        assert body["id"] != forced_id
        assert not body["created_at"].startswith("2000")
        assert User.objects.get(pk=body["id"]).is_active

    def test_email_is_unique_whatever_its_case(self, api: APIClient) -> None:
        assert register(api).status_code == 201
        body = assert_problem(register(api, email="GRACE@Example.COM"), 400)
        assert "email" in body["errors"]
        assert User.objects.count() == 1

    @pytest.mark.parametrize(
        "password",
        ["short1A", "password123", "grace@example.com", "12345678901234"],
        ids=["too-short", "common", "the-email", "numeric"],
    )
    def test_password_policy(self, api: APIClient, password: str) -> None:
        body = assert_problem(register(api, password=password), 400)
        assert "password" in body["errors"]
        assert not User.objects.exists()

    @pytest.mark.parametrize(
        "overrides",
        [
            {"name": None},
            {"email": "not-an-email"},
            {"email": ["a@example.com"]},
            {"name": "x" * 151},
            {"email": "a" * 250 + "@example.com"},
            {"password": "p" * 10_000},
            {"role": 7},
            {"name": 5},
            {"name": True},
            {"name": "Grace\r\nBcc: x@example.com"},
            {"name": "Grace\x1b[2J"},
            {"email": "g@example.com\r\nBcc: x@example.com"},
            {"email": 5},
            {"password": 123456789012},
        ],
        ids=["null-name", "bad-email", "list-email", "long-name", "long-email", "huge-password",
             "int-role", "int-name", "bool-name", "crlf-name", "escape-name", "crlf-email",
             "int-email", "int-password"],
    )  # fmt: skip
    def test_bad_fields_are_400_and_change_nothing(self, api: APIClient, overrides: dict) -> None:
        assert_problem(register(api, **overrides), 400)
        assert not User.objects.exists()
        assert not OutboxMessage.objects.exists()

    def test_missing_fields_are_listed(self, api: APIClient) -> None:
        body = assert_problem(api.post("/api/users/register", {}, format="json"), 400)
        assert set(body["errors"]) == {"name", "email", "password"}

    def test_malformed_json(self, api: APIClient) -> None:
        response = api.post(
            "/api/users/register", data='{"name": "x",', content_type="application/json"
        )
        assert_problem(response, 400)

    def test_wrong_content_type(self, api: APIClient) -> None:
        response = api.post("/api/users/register", data="name=x", content_type="text/plain")
        assert_problem(response, 415)

    def test_json_that_is_not_an_object(self, api: APIClient) -> None:
        response = api.post("/api/users/register", data="[1, 2]", content_type="application/json")
        assert_problem(response, 400)

    def test_oversized_body(self, api: APIClient) -> None:
        payload = json.dumps({"name": "x" * 400_000, "email": "a@b.co", "password": PASSWORD})
        response = api.post("/api/users/register", data=payload, content_type="application/json")
        assert assert_problem(response, 413)["type"] == "urn:problem:body-too-large"
        assert not User.objects.exists()

    @pytest.mark.parametrize("path", ["/api/users/register", "/api/users/register/"])
    def test_with_and_without_trailing_slash(self, api: APIClient, path: str) -> None:
        response = api.post(
            path, {"name": "G", "email": f"{len(path)}@example.com", "password": PASSWORD}
        )
        assert response.status_code == 201


class TestMe:
    def test_returns_the_caller(self, customer: User, customer_client: APIClient) -> None:
        for path in ("/api/users/me", "/api/users/me/"):
            response = customer_client.get(path)
            assert response.status_code == 200
            assert response.json()["id"] == str(customer.id)

    def test_whoami_echoes_the_token(self, customer: User, customer_client: APIClient) -> None:
        assert customer_client.get("/api/whoami").json() == {
            "id": str(customer.id),
            "role": "customer",
        }

    def test_needs_a_token(self, api: APIClient) -> None:
        response = api.get("/api/users/me")
        assert_problem(response, 401)
        assert response["WWW-Authenticate"].startswith("Bearer")

    def test_forged_token(self, api: APIClient) -> None:
        api.credentials(HTTP_AUTHORIZATION="Bearer eyJhbGciOiJub25lIn0.e30.")
        assert_problem(api.get("/api/users/me"), 401)


class TestUserDetail:
    def test_owner_reads_and_updates_profile(
        self, customer: User, customer_client: APIClient
    ) -> None:
        url = f"/api/users/{customer.id}"
        assert customer_client.get(url).json()["email"] == customer.email
        response = customer_client.patch(url, {"name": "New Name"}, format="json")
        assert response.status_code == 200
        assert response.json()["name"] == "New Name"
        message = OutboxMessage.objects.filter(type="user.updated").get()
        assert message.data["name"] == "New Name"

    def test_another_users_profile_is_404(
        self, make_user: Callable[..., User], customer_client: APIClient
    ) -> None:
        other = make_user()
        for method in ("get", "put", "patch"):
            response = getattr(customer_client, method)(
                f"/api/users/{other.id}/", {"name": "pwned", "email": "p@example.com"}
            )
            assert_problem(response, 404)
        other.refresh_from_db()
        assert other.name != "pwned"

    def test_unknown_id_is_404(self, customer_client: APIClient) -> None:
        assert_problem(customer_client.get(f"/api/users/{uuid.uuid4()}"), 404)
        assert_problem(customer_client.get("/api/users/not-a-uuid"), 404)

    def test_user_cannot_change_own_role_or_server_fields(
        self, customer: User, customer_client: APIClient
    ) -> None:
        url = f"/api/users/{customer.id}"
        body = assert_problem(customer_client.patch(url, {"role": "admin"}, format="json"), 403)
        assert body["type"] == "urn:problem:role-change-forbidden"
        before = User.objects.get(pk=customer.pk)
        response = customer_client.patch(
            url, {"id": str(uuid.uuid4()), "created_at": "2000-01-01T00:00:00Z"}, format="json"
        )
        assert response.status_code == 200
        after = User.objects.get(pk=customer.pk)
        assert (after.id, after.role, after.created_at) == (
            before.id,
            "customer",
            before.created_at,
        )

    def test_put_needs_the_whole_profile(self, customer: User, customer_client: APIClient) -> None:
        url = f"/api/users/{customer.id}"
        body = assert_problem(customer_client.put(url, {"name": "Only name"}, format="json"), 400)
        assert "email" in body["errors"]
        response = customer_client.put(
            url,
            {"name": "Both", "email": "both@example.com", "current_password": PASSWORD},
            format="json",
        )
        assert response.status_code == 200
        assert response.json()["email"] == "both@example.com"

    def test_email_change_cannot_take_anothers_address(
        self, make_user: Callable[..., User], customer: User, customer_client: APIClient
    ) -> None:
        other = make_user(email="taken@example.com")
        url = f"/api/users/{customer.id}"
        # Without the password, nothing tells whether the address is taken.
        response = customer_client.patch(url, {"email": "TAKEN@example.com"}, format="json")
        assert set(assert_problem(response, 400)["errors"]) == {"current_password"}
        response = customer_client.patch(
            url, {"email": "TAKEN@example.com", "current_password": PASSWORD}, format="json"
        )
        assert "email" in assert_problem(response, 400)["errors"]
        assert User.objects.get(pk=customer.pk).email != other.email

    def test_password_change_needs_the_current_password(
        self, customer: User, customer_client: APIClient
    ) -> None:
        url = f"/api/users/{customer.id}"
        new = "brand-New-secret-42"
        response = customer_client.patch(url, {"password": new}, format="json")
        assert "current_password" in assert_problem(response, 400)["errors"]
        response = customer_client.patch(
            url, {"password": new, "current_password": PASSWORD}, format="json"
        )
        assert response.status_code == 200
        assert User.objects.get(pk=customer.pk).check_password(new)

    def test_email_change_needs_the_current_password(
        self, customer: User, customer_client: APIClient
    ) -> None:
        url = f"/api/users/{customer.id}"
        before = User.objects.values().get(pk=customer.pk)
        for extra in ({}, {"current_password": "not-the-Password-1"}, {"current_password": ""}):
            response = customer_client.patch(
                url, {"email": "new@example.com", **extra}, format="json"
            )
            assert "current_password" in assert_problem(response, 400)["errors"]
            assert User.objects.values().get(pk=customer.pk) == before
        response = customer_client.put(
            url,
            {"name": customer.name, "email": "new@example.com", "current_password": PASSWORD},
            format="json",
        )
        assert response.status_code == 200
        assert User.objects.get(pk=customer.pk).email == "new@example.com"

    def test_admin_changes_anothers_email_without_a_password(
        self, customer: User, admin_client: APIClient
    ) -> None:
        response = admin_client.patch(
            f"/api/users/{customer.id}", {"email": "moved@example.com"}, format="json"
        )
        assert response.status_code == 200
        assert User.objects.get(pk=customer.pk).email == "moved@example.com"

    def test_admin_changing_own_email_needs_the_password(
        self, admin: User, admin_client: APIClient
    ) -> None:
        response = admin_client.patch(
            f"/api/users/{admin.id}", {"email": "boss@example.com"}, format="json"
        )
        assert "current_password" in assert_problem(response, 400)["errors"]
        assert User.objects.get(pk=admin.pk).email == admin.email

    def test_admin_reads_anyone_and_changes_roles(
        self, customer: User, admin_client: APIClient
    ) -> None:
        url = f"/api/users/{customer.id}"
        assert admin_client.get(url).status_code == 200
        response = admin_client.patch(url, {"role": "organizer"}, format="json")
        assert response.status_code == 200
        assert User.objects.get(pk=customer.pk).role == Role.ORGANIZER
        assert OutboxMessage.objects.filter(type="user.updated").get().data["role"] == "organizer"

    def test_last_admin_cannot_be_demoted(self, admin: User, admin_client: APIClient) -> None:
        response = admin_client.patch(f"/api/users/{admin.id}", {"role": "customer"}, format="json")
        assert_problem(response, 409)
        assert User.objects.get(pk=admin.pk).role == Role.ADMIN

    def test_new_role_shows_in_the_next_token(
        self, customer: User, admin_client: APIClient
    ) -> None:
        admin_client.patch(f"/api/users/{customer.id}", {"role": "organizer"}, format="json")
        client = login_client(customer)
        assert client.get("/api/users/me").json()["role"] == "organizer"


class TestUserList:
    def test_admin_lists_users_paginated(
        self, make_user: Callable[..., User], admin_client: APIClient
    ) -> None:
        for _ in range(3):
            make_user()
        response = admin_client.get("/api/users/?page_size=2")
        body = response.json()
        assert response.status_code == 200
        assert set(body) == {"count", "next", "previous", "results"}
        assert body["count"] == 4
        assert len(body["results"]) == 2
        assert admin_client.get("/api/users?role=admin").json()["count"] == 1

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("page_size=100000", "page_size"),
            ("page_size=0", "page_size"),
            ("page=0", "page"),
            ("page=abc", "page"),
            ("search=", "search"),
            ("search=a%00b", "search"),
            ("search=a%0Db", "search"),
            ("search=" + "x" * 255, "search"),
            ("role=", "role"),
            ("role=admin&role=customer", "role"),
        ],
    )
    def test_bad_query_parameters_are_400_naming_them(
        self, admin_client: APIClient, query: str, field: str
    ) -> None:
        body = assert_problem(admin_client.get(f"/api/users/?{query}"), 400)
        assert set(body["errors"]) == {field}

    def test_page_size_up_to_100(self, admin_client: APIClient) -> None:
        assert admin_client.get("/api/users/?page_size=100").status_code == 200

    def test_non_admins_are_refused(self, customer_client: APIClient) -> None:
        assert_problem(customer_client.get("/api/users/"), 403)

    def test_bad_filter_is_400(self, admin_client: APIClient) -> None:
        assert_problem(admin_client.get("/api/users/?role=wizard"), 400)
        assert_problem(admin_client.get("/api/users/?page=999"), 404)


def session(user: User) -> tuple[APIClient, str]:
    """A login of `user`: a client signed in with its access token, and its refresh token."""
    client = APIClient()
    response = client.post(
        "/api/users/login", {"email": user.email, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    return client, response.json()["refresh"]


def refresh_status(token: str) -> int:
    response = APIClient().post("/api/users/token/refresh", {"refresh": token}, format="json")
    return int(response.status_code)


class TestCredentialChangeEndsOtherSessions:
    NEW_PASSWORD = "brand-New-secret-42"

    @pytest.mark.parametrize(
        "change",
        [
            {"password": NEW_PASSWORD, "current_password": PASSWORD},
            {"email": "changed@example.com", "current_password": PASSWORD},
        ],
        ids=["password", "email"],
    )
    def test_by_the_user(
        self, make_user: Callable[..., User], customer: User, change: dict[str, str]
    ) -> None:
        current, current_refresh = session(customer)
        _, other_refresh = session(customer)
        _, another_refresh = session(customer)
        _, someone_elses_refresh = session(make_user())
        response = current.patch(f"/api/users/{customer.id}", change, format="json")
        assert response.status_code == 200, response.content
        assert refresh_status(other_refresh) == 401
        assert refresh_status(another_refresh) == 401
        # The session that made the change goes on; nobody else's is touched.
        assert refresh_status(current_refresh) == 200
        assert refresh_status(someone_elses_refresh) == 200

    def test_by_an_admin_ends_every_session_of_the_user(
        self, customer: User, admin: User, admin_client: APIClient
    ) -> None:
        _, refresh = session(customer)
        _, admin_refresh = session(admin)
        response = admin_client.patch(
            f"/api/users/{customer.id}", {"email": "moved@example.com"}, format="json"
        )
        assert response.status_code == 200
        assert refresh_status(refresh) == 401
        assert refresh_status(admin_refresh) == 200

    def test_other_changes_keep_sessions(self, customer: User) -> None:
        current, _ = session(customer)
        _, other_refresh = session(customer)
        response = current.patch(f"/api/users/{customer.id}", {"name": "Renamed"}, format="json")
        assert response.status_code == 200
        assert refresh_status(other_refresh) == 200

    def test_a_refused_change_keeps_sessions(self, customer: User) -> None:
        current, _ = session(customer)
        _, other_refresh = session(customer)
        response = current.patch(
            f"/api/users/{customer.id}",
            {"password": self.NEW_PASSWORD, "current_password": "not-the-Password-1"},
            format="json",
        )
        assert_problem(response, 400)
        assert refresh_status(other_refresh) == 200
