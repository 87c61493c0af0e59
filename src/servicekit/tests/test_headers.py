"""Security headers on every kind of response the shared middleware stack gives (the booking
service's fast path has its own test beside it: booking_service/bookings/tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from django.http.response import HttpResponseBase
from django.test import Client

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def assert_security_headers(response: HttpResponseBase) -> None:
    assert {name: response.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS


def answers() -> dict[str, HttpResponseBase]:
    """One response of each kind, over plain HTTP."""
    client = Client()
    return {
        "view": client.get("/health/live"),
        "docs page": client.get("/api/docs/"),
        "401 problem": client.get("/api/whoami"),
        "404 problem": client.get("/no/such/path"),
        "parser problem": client.post(
            "/api/users/register", b'{"name": ', content_type="application/json"
        ),
        "414 problem": client.get("/" + "a" * 5000),
    }


@pytest.mark.django_db
def test_every_kind_of_response_carries_the_security_headers() -> None:
    responses = answers()
    assert {kind: r.status_code for kind, r in responses.items()} == {
        "view": 200,
        "docs page": 200,
        "401 problem": 401,
        "404 problem": 404,
        "parser problem": 400,
        "414 problem": 414,
    }
    for response in responses.values():
        assert_security_headers(response)
        assert "Strict-Transport-Security" not in response  # plain HTTP: never HSTS


@pytest.mark.django_db
def test_hsts_over_tls_behind_a_proxy(settings: Any) -> None:
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = Client()
    over_tls = client.get("/no/such/path", HTTP_X_FORWARDED_PROTO="https")
    assert over_tls["Strict-Transport-Security"] == "max-age=31536000"
    assert_security_headers(over_tls)
    # Not over TLS: HSTS would mean nothing (and a browser ignores it on plain HTTP).
    assert "Strict-Transport-Security" not in client.get("/no/such/path")


def base_setting_in_a_new_process(expression: str, **env: str) -> str:
    """`expression` evaluated on servicekit.base_settings as `s`, read in a fresh process with
    the SECURE_* variables given here and no others."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SECURE_")}
    code = f"from servicekit import base_settings as s; print({expression})"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_the_tls_proxy_header_and_hsts_come_from_the_environment() -> None:
    expression = "s.SECURE_HSTS_SECONDS, getattr(s, 'SECURE_PROXY_SSL_HEADER', None)"
    assert base_setting_in_a_new_process(expression) == "0 None"  # development
    production = base_setting_in_a_new_process(
        expression, SECURE_HSTS_SECONDS="63072000", SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto"
    )
    assert production == "63072000 ('HTTP_X_FORWARDED_PROTO', 'https')"
