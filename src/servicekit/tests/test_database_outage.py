"""Every service answers a database outage with 503 and Retry-After, never 500: a real
server process whose PostgreSQL does not answer (nothing listens on its port)."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from servicekit.testing import TestTokenIssuer, service_process


def _dead_database_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgres://turnstile@127.0.0.1:{port}/gone"  # nothing listens there now


def _request(url: str, *, token: str | None = None, body: Any = None) -> tuple[int, Any, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, json.loads(exc.read())


@pytest.mark.parametrize("package", ["users_service", "booking_service", "notifications_service"])
def test_ready_is_503_while_the_database_is_down(
    package: str, jwks_url: str, token_issuer: TestTokenIssuer
) -> None:
    env = {"DATABASE_URL": _dead_database_url(), "JWT_JWKS_URL": jwks_url}
    admin = token_issuer.token(str(uuid.uuid4()), "admin")
    with service_process(package, env=env) as base:
        status, _, body = _request(f"{base}/health/ready", token=admin)
    assert status == 503
    assert body["status"] == "unavailable"
    if package == "users_service":
        # Its signing keys live in the database that is down: the admin's token cannot be
        # verified, so the answer is the status alone.
        assert "checks" not in body
    else:
        assert body["checks"]["database"]["ok"] is False


def test_bookings_are_503_with_retry_after_while_the_database_is_down(
    jwks_url: str, token_issuer: TestTokenIssuer
) -> None:
    env = {"DATABASE_URL": _dead_database_url(), "JWT_JWKS_URL": jwks_url}
    customer = token_issuer.token(str(uuid.uuid4()), "customer")
    with service_process("booking_service", env=env) as base:
        answers = [
            # a ticket hold (the flash-sale path), a slot (the regular view), a plain read
            _request(
                f"{base}/api/bookings/", token=customer, body={"event": 1, "tickets_booked": 1}
            ),
            _request(
                f"{base}/api/bookings/",
                token=customer,
                body={
                    "resource": 1,
                    "start_time": "2030-01-01T10:00:00Z",
                    "end_time": "2030-01-01T11:00:00Z",
                },
            ),
            _request(f"{base}/api/bookings/", token=customer),
        ]
    for status, headers, body in answers:
        assert status == 503, body
        assert headers["Content-Type"] == "application/problem+json"
        assert int(headers["Retry-After"]) >= 1
