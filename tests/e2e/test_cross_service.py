"""The verifier every other service uses accepts real tokens from a running users service."""

from __future__ import annotations

import json
import os
import urllib.request

import pytest

from servicekit.auth import JWKSCache, TokenVerifier, fetch_jwks_over_http
from servicekit.testing import current_database_url, service_process

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def post(url: str, body: dict[str, str]) -> dict[str, object]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, object] = json.loads(response.read())
        return result


def test_booking_style_verifier_accepts_a_token_from_the_running_users_service() -> None:
    env = {"DATABASE_URL": current_database_url(), "SECRET_KEY": os.environ["SECRET_KEY"]}
    with service_process("users_service", env=env) as users:
        user = post(
            f"{users}/api/users/register",
            {"name": "Ivy", "email": "ivy@example.com", "password": "verify-Me-please-7"},
        )
        tokens = post(
            f"{users}/api/users/login",
            {"email": "ivy@example.com", "password": "verify-Me-please-7"},
        )
        jwks_url = f"{users}/.well-known/jwks.json"
        verifier = TokenVerifier(
            JWKSCache(lambda: fetch_jwks_over_http(jwks_url)),
            issuer="turnstile-users",
            audience="turnstile",
        )
        principal = verifier.verify(str(tokens["access"]))
    assert principal.id == user["id"]
    assert principal.role == "customer"
