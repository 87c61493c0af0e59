from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from servicekit.testing import all_at_once, current_database_url, service_process
from users_service.accounts.models import User, email_canonical
from users_service.conftest import PASSWORD, login_client

WRONG = "wrong-Password-1"


def attempt(
    api: APIClient, email: str, password: str, address: str = "10.0.0.1", **extra: Any
) -> Any:
    return api.post(
        "/api/users/login",
        {"email": email, "password": password},
        format="json",
        REMOTE_ADDR=address,
        **extra,
    )


def assert_limited(response: Any) -> int:
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == "urn:problem:rate-limited"
    wait = int(response["Retry-After"])
    assert wait >= 1
    return wait


@pytest.mark.django_db
class TestLoginPerAddress:
    @override_settings(RATE_LIMIT_LOGIN_PER_ADDRESS="3/h", RATE_LIMIT_LOGIN_PER_ACCOUNT=None)
    def test_a_burst_slows_its_address_only(self, api: APIClient, customer: User) -> None:
        for n in range(3):
            assert attempt(api, f"victim{n}@example.com", WRONG).status_code == 401
        wait = assert_limited(attempt(api, customer.email, PASSWORD))
        assert wait <= 2 * 3600  # a sliding window: the refused attempts weigh on after it
        assert attempt(api, customer.email, PASSWORD, address="10.0.0.2").status_code == 200

    @override_settings(RATE_LIMIT_LOGIN_PER_ADDRESS="2/2s", RATE_LIMIT_LOGIN_PER_ACCOUNT=None)
    def test_an_address_recovers_when_its_window_ends(self, api: APIClient, customer: User) -> None:
        for _ in range(2):
            assert attempt(api, customer.email, WRONG).status_code == 401
        wait = assert_limited(attempt(api, customer.email, PASSWORD))
        assert wait <= 2 * 2
        time.sleep(wait)  # Retry-After is honest: waiting that long is enough
        assert attempt(api, customer.email, PASSWORD).status_code == 200

    @override_settings(
        TRUSTED_PROXIES=["10.0.0.0/8"],
        RATE_LIMIT_LOGIN_PER_ADDRESS="2/h",
        RATE_LIMIT_LOGIN_PER_ACCOUNT=None,
    )
    def test_behind_a_proxy_each_client_has_its_own_limit(
        self, api: APIClient, customer: User
    ) -> None:
        def via_proxy(client: str, password: str) -> Any:
            return attempt(
                api,
                customer.email,
                password,
                address="10.1.2.3",  # the load balancer
                HTTP_X_FORWARDED_FOR=f"{client}, 10.9.9.9",
            )

        for _ in range(2):
            assert via_proxy("203.0.113.5", WRONG).status_code == 401
        assert_limited(via_proxy("203.0.113.5", PASSWORD))
        assert via_proxy("198.51.100.7", PASSWORD).status_code == 200


@pytest.mark.django_db
class TestLoginPerAccount:
    def test_the_owner_logs_in_from_elsewhere_during_an_attack_from_one_address(
        self, api: APIClient, customer: User
    ) -> None:
        """With the default limits: the attacker's address runs out long before the
        account's budget does."""
        codes = [attempt(api, customer.email, WRONG, "10.6.6.6").status_code for _ in range(45)]
        assert codes == [401] * 40 + [429] * 5
        assert attempt(api, customer.email, PASSWORD, "10.7.7.7").status_code == 200

    @override_settings(RATE_LIMIT_LOGIN_PER_ADDRESS=None, RATE_LIMIT_LOGIN_PER_ACCOUNT="3/h")
    def test_many_addresses_lock_the_account_until_its_window_ends(
        self, api: APIClient, customer: User
    ) -> None:
        for n in range(3):
            assert attempt(api, customer.email, WRONG, f"10.1.0.{n}").status_code == 401
        wait = assert_limited(attempt(api, customer.email, PASSWORD, "10.2.0.1"))
        assert wait <= 2 * 3600
        assert attempt(api, "someone-else@example.com", WRONG, "10.2.0.1").status_code == 401

    @override_settings(RATE_LIMIT_LOGIN_PER_ADDRESS=None, RATE_LIMIT_LOGIN_PER_ACCOUNT="3/h")
    def test_unknown_accounts_are_limited_alike(self, api: APIClient) -> None:
        for n in range(3):
            assert attempt(api, "ghost@example.com", WRONG, f"10.1.0.{n}").status_code == 401
        assert_limited(attempt(api, "ghost@example.com", WRONG, "10.2.0.1"))

    @override_settings(RATE_LIMIT_LOGIN_PER_ADDRESS=None, RATE_LIMIT_LOGIN_PER_ACCOUNT="2/h")
    def test_every_spelling_of_an_email_shares_the_account_limit(
        self, api: APIClient, make_user: Any
    ) -> None:
        user = make_user(email="customer@example.com")
        long_s = "cu\u017ftomer@example.com"  # LATIN SMALL LETTER LONG S: UPPER is "S"
        # The database takes it for the same account: it logs in ...
        assert attempt(api, long_s, PASSWORD, "10.1.0.1").status_code == 200
        assert email_canonical(long_s) == email_canonical(" Customer@Example.com")
        # ... so its failures count against that account.
        assert attempt(api, long_s, WRONG, "10.1.0.2").status_code == 401
        assert_limited(attempt(api, user.email.upper(), PASSWORD, "10.1.0.3"))


@pytest.mark.django_db
class TestRegistration:
    @override_settings(RATE_LIMIT_REGISTER_PER_ADDRESS="2/h")
    def test_registrations_per_address_are_limited(self, api: APIClient) -> None:
        def register(n: int, address: str) -> Any:
            return api.post(
                "/api/users/register",
                {"name": f"New {n}", "email": f"new{n}@example.com", "password": PASSWORD},
                format="json",
                REMOTE_ADDR=address,
            )

        assert register(1, "10.0.0.1").status_code == 201
        assert register(2, "10.0.0.1").status_code == 201
        assert_limited(register(3, "10.0.0.1"))
        assert not User.objects.filter(email="new3@example.com").exists()
        assert register(3, "10.0.0.2").status_code == 201

    def test_a_taken_email_costs_no_hash(
        self, api: APIClient, customer: User, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def no_hash(self: User, raw: str) -> None:
            raise AssertionError("hashed a password for a taken email")

        monkeypatch.setattr(User, "set_password", no_hash)
        response = api.post(
            "/api/users/register",
            {"name": "Again", "email": customer.email.upper(), "password": PASSWORD},
            format="json",
        )
        assert response.status_code == 400
        assert "email" in response.json()["errors"]


@pytest.mark.django_db
class TestRefresh:
    @override_settings(RATE_LIMIT_REFRESH_PER_ADDRESS="2/h")
    def test_refreshes_per_address_are_limited(self, api: APIClient, customer: User) -> None:
        refresh = attempt(api, customer.email, PASSWORD).json()["refresh"]
        for _ in range(2):
            response = api.post(
                "/api/users/token/refresh", {"refresh": refresh}, format="json",
                REMOTE_ADDR="10.0.0.1",
            )  # fmt: skip
            assert response.status_code == 200
            refresh = response.json()["refresh"]
        limited = api.post(
            "/api/users/token/refresh", {"refresh": refresh}, format="json", REMOTE_ADDR="10.0.0.1"
        )
        assert_limited(limited)
        # The token was not spent by the refused request.
        again = api.post(
            "/api/users/token/refresh", {"refresh": refresh}, format="json", REMOTE_ADDR="10.0.0.2"
        )
        assert again.status_code == 200


@pytest.mark.django_db
class TestCurrentPassword:
    @override_settings(RATE_LIMIT_PASSWORD_CHECK_PER_USER="2/h")
    def test_current_password_guesses_are_limited_per_user(
        self, customer: User, make_user: Any
    ) -> None:
        client = login_client(customer)

        def change(current: str) -> Any:
            return client.patch(
                f"/api/users/{customer.id}",
                {"password": "brand-New-Secret-77", "current_password": current},
                format="json",
            )

        for _ in range(2):
            assert change(WRONG).status_code == 400
        assert_limited(change(PASSWORD))
        customer.refresh_from_db()
        assert customer.check_password(PASSWORD)
        # Another user's checks are their own.
        other = make_user()
        response = login_client(other).patch(
            f"/api/users/{other.id}",
            {"password": "brand-New-Secret-77", "current_password": PASSWORD},
            format="json",
        )
        assert response.status_code == 200


@pytest.mark.django_db
def test_every_limited_operation_documents_429(api: APIClient) -> None:
    schema = api.get("/api/schema/", {"format": "json"}).json()
    limited = [
        ("/api/users/login/", "post"),
        ("/api/users/register/", "post"),
        ("/api/users/token/refresh/", "post"),
        ("/api/users/{id}/", "put"),
        ("/api/users/{id}/", "patch"),
    ]
    for path, method in limited:
        assert "429" in schema["paths"][path][method]["responses"], (path, method)


@pytest.mark.django_db(transaction=True)
@override_settings(RATE_LIMIT_LOGIN_PER_ADDRESS="5/h", RATE_LIMIT_LOGIN_PER_ACCOUNT=None)
def test_a_concurrent_burst_is_judged_as_a_burst(customer: User) -> None:
    """Twelve wrong passwords at once, each on its own thread and connection: only the
    first five are counted in time to reach the password check."""
    burst = 12
    codes = all_at_once(
        burst, lambda: attempt(APIClient(), customer.email, WRONG, "10.4.4.4").status_code
    )
    assert sorted(codes) == [401] * 5 + [429] * (burst - 5)


def _post_login(base: str, email: str, password: str) -> int:
    request = urllib.request.Request(
        f"{base}/api/users/login",
        data=json.dumps({"email": email, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_limits_are_shared_by_two_server_processes(customer: User) -> None:
    """Attempts counted by one process count in the other."""
    env = {
        "DATABASE_URL": current_database_url(),
        "SECRET_KEY": os.environ["SECRET_KEY"],
        "RATE_LIMIT_LOGIN_PER_ADDRESS": "4/h",
    }
    with (
        service_process("users_service", env=env) as first,
        service_process("users_service", env=env) as second,
    ):
        codes = [_post_login(first if n % 2 else second, customer.email, WRONG) for n in range(4)]
        assert codes == [401] * 4
        # Both processes now refuse this address, even with the right password.
        assert _post_login(first, customer.email, PASSWORD) == 429
        assert _post_login(second, customer.email, PASSWORD) == 429
