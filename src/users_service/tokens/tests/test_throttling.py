from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from servicekit.testing import current_database_url, service_process
from users_service.accounts.models import User
from users_service.conftest import PASSWORD
from users_service.tokens.models import LoginThrottle


def attempt(api: APIClient, email: str, password: str, address: str = "10.0.0.1") -> Any:
    return api.post(
        "/api/users/login",
        {"email": email, "password": password},
        format="json",
        REMOTE_ADDR=address,
    )


@pytest.mark.django_db
class TestProgressiveDelay:
    def test_five_failures_are_free_then_the_account_must_wait(
        self, api: APIClient, customer: User
    ) -> None:
        for _ in range(5):
            assert attempt(api, customer.email, "wrong-Password-1").status_code == 401
        # The sixth failure is still judged, and starts the delay.
        assert attempt(api, customer.email, "wrong-Password-1").status_code == 401
        blocked = attempt(api, customer.email, PASSWORD, address="10.9.9.9")
        assert blocked.status_code == 429
        assert int(blocked["Retry-After"]) >= 1
        assert blocked["Content-Type"] == "application/problem+json"

    def test_the_delay_doubles(self, api: APIClient, customer: User) -> None:
        for _ in range(8):
            attempt(api, customer.email, "wrong-Password-1")
            LoginThrottle.objects.update(locked_until=None)  # let every attempt be judged
        row = LoginThrottle.objects.get(key=f"account:{customer.email}")
        assert row.consecutive_failures == 8
        attempt(api, customer.email, "wrong-Password-1")
        row.refresh_from_db()
        # 9th failure: 2^(9-5-1) = 8 seconds
        assert row.locked_until is not None
        assert 7 <= (row.locked_until - row.updated_at).total_seconds() <= 9

    def test_unknown_accounts_are_throttled_alike(self, api: APIClient) -> None:
        for _ in range(6):
            attempt(api, "ghost@example.com", "wrong-Password-1")
        assert attempt(api, "ghost@example.com", "wrong-Password-1").status_code == 429

    def test_one_address_guessing_many_accounts_is_throttled(
        self, api: APIClient, customer: User
    ) -> None:
        for n in range(6):
            attempt(api, f"victim{n}@example.com", "guess-Password-1", address="10.6.6.6")
        assert attempt(api, customer.email, PASSWORD, address="10.6.6.6").status_code == 429
        assert attempt(api, customer.email, PASSWORD, address="10.7.7.7").status_code == 200

    def test_success_resets_the_account_streak(self, api: APIClient, customer: User) -> None:
        for _ in range(4):
            attempt(api, customer.email, "wrong-Password-1")
        assert attempt(api, customer.email, PASSWORD).status_code == 200
        # Fresh addresses, so only the account's streak counts.
        for n in range(5):
            assert (
                attempt(api, customer.email, "wrong-Password-1", f"10.3.0.{n}").status_code == 401
            )

    @override_settings(LOGIN_MAX_FAILURES_PER_HOUR=10, LOGIN_FREE_FAILURES=1000)
    def test_hourly_cap_per_account(self, api: APIClient, customer: User) -> None:
        for n in range(10):
            assert (
                attempt(api, customer.email, "wrong-Password-1", f"10.1.0.{n}").status_code == 401
            )
        capped = attempt(api, customer.email, PASSWORD, "10.2.0.1")
        assert capped.status_code == 429
        assert 3500 <= int(capped["Retry-After"]) <= 3600


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
def test_throttle_is_shared_by_two_server_processes(customer: User) -> None:
    """Failures counted by one process delay logins served by another."""
    env = {
        "DATABASE_URL": current_database_url(),
        "SECRET_KEY": os.environ["SECRET_KEY"],
    }
    with (
        service_process("users_service", env=env) as first,
        service_process("users_service", env=env) as second,
    ):
        codes = [
            _post_login(first if n % 2 else second, customer.email, "wrong-Password-1")
            for n in range(6)
        ]
        assert codes == [401] * 6
        # Both processes now refuse, even with the right password.
        assert _post_login(first, customer.email, PASSWORD) == 429
        assert _post_login(second, customer.email, PASSWORD) == 429
