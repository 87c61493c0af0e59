"""End to end through the real processes of the three services, as the stack runs them:
register -> login -> organizer creates an event -> customer books -> pays -> the customer sees
the confirmation in GET /api/notifications/ and the email reaches the SMTP server in 5 s."""

from __future__ import annotations

import dataclasses
import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from devstack.process import Child, stop_all
from devstack.services import Service, available_services
from devstack.stack import manage_argv, server_argv, service_env, wait_live
from notifications_service.testing import (
    SmtpRecorder,
    database_url_for,
    delete_stream,
    smtp_server,
    unique_bus_config,
)
from servicekit.testing import free_port, wait_until

pytestmark = pytest.mark.slow

PASSWORD = "Turnstile-e2e-Pa55word"


def _services() -> dict[str, Service]:
    return {service.name: service for service in available_services()}


def _call(
    method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@dataclasses.dataclass
class Stack:
    urls: dict[str, str]
    smtp: SmtpRecorder


@pytest.fixture
def stack() -> Iterator[Stack]:
    services = _services()
    if not {"users", "booking", "notifications"} <= set(services):
        pytest.skip("needs all three services")
    config = unique_bus_config()
    suffix = uuid.uuid4().hex[:6]
    databases = {name: f"e2e_{name}_{suffix}" for name in services}
    server = database_url_for("postgres")
    with psycopg.connect(server, autocommit=True) as conn:
        for database in databases.values():
            conn.execute(f'CREATE DATABASE "{database}"')
    smtp_port = free_port()
    children: list[Child] = []
    placed = {
        name: dataclasses.replace(service, port=free_port()) for name, service in services.items()
    }
    users_url = f"http://127.0.0.1:{placed['users'].port}"
    secret_key = secrets.token_urlsafe(32)
    try:
        with smtp_server(smtp_port) as smtp:
            envs: dict[str, dict[str, str]] = {}
            for name, service in placed.items():
                env = service_env(
                    service,
                    database_url=database_url_for(databases[name]),
                    nats_url=",".join(config.servers),
                    dev_secrets={"SECRET_KEY": secret_key},
                )
                env.update(
                    {
                        "SECRET_KEY": secret_key,
                        "NATS_STREAM": config.stream,
                        "NATS_SUBJECT_PREFIX": config.subject_prefix,
                        "JWT_JWKS_URL": f"{users_url}/.well-known/jwks.json",
                        "EMAIL_HOST": "127.0.0.1",
                        "EMAIL_PORT": str(smtp_port),
                        "ARGON2_MEMORY_COST_KIB": str(19 * 1024),
                    }
                )
                envs[name] = env
                subprocess.run(
                    manage_argv(service, "migrate", "--noinput", "-v", "0"), env=env, check=True
                )
            for name, service in placed.items():
                children.append(Child(name, server_argv(service, 1), envs[name]).start())
                for worker in service.workers:
                    argv = manage_argv(service, *worker.command)
                    children.append(Child(f"{name}-{worker.name}", argv, envs[name]).start())
            for service in placed.values():
                assert wait_live(service, timeout=60), f"{service.name} did not start"
            yield Stack(
                urls={name: f"http://127.0.0.1:{service.port}" for name, service in placed.items()},
                smtp=smtp,
            )
    finally:
        stop_all(children)
        delete_stream(config)
        with psycopg.connect(server, autocommit=True) as conn:
            for database in databases.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _register_and_login(stack: Stack, role: str) -> tuple[str, str, str]:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    status, body = _call(
        "POST",
        f"{stack.urls['users']}/api/users/register",
        {"name": f"E2E {role}", "email": email, "password": PASSWORD, "role": role},
    )
    assert status == 201, body
    status, tokens = _call(
        "POST", f"{stack.urls['users']}/api/users/login", {"email": email, "password": PASSWORD}
    )
    assert status == 200, tokens
    return str(body["id"]), email, str(tokens["access"])


def test_booking_paid_reaches_the_customer_as_notification_and_email(stack: Stack) -> None:
    _organizer_id, _, organizer_token = _register_and_login(stack, "organizer")
    customer_id, customer_email, customer_token = _register_and_login(stack, "customer")
    booking_url = stack.urls["booking"]

    status, event = _call(
        "POST",
        f"{booking_url}/api/events/",
        {
            "name": "End-to-end concert",
            "description": "",
            "date": (datetime.now(UTC).date() + timedelta(days=30)).isoformat(),
            "time": "20:00",
            "location": "Main hall",
            "total_tickets": 50,
            "price_per_ticket": "25.00",
        },
        organizer_token,
    )
    assert status == 201, event
    status, booking = _call(
        "POST",
        f"{booking_url}/api/bookings/",
        {"event": event["id"], "tickets_booked": 2},
        customer_token,
    )
    assert status == 201, booking
    status, payment = _call(
        "POST",
        f"{booking_url}/api/payments/",
        {"booking": booking["id"], "payment_token": "tok_visa"},
        customer_token,
    )
    assert status == 201, payment
    paid_at = time.monotonic()

    def confirmation() -> dict[str, Any] | None:
        status, page = _call(
            "GET", f"{stack.urls['notifications']}/api/notifications/", token=customer_token
        )
        assert status == 200, page
        return next((n for n in page["results"] if n["kind"] == "booking.confirmed"), None)

    assert wait_until(lambda: confirmation() is not None, 5, interval=0.1), "no notification"
    notification = confirmation()
    assert notification is not None
    assert notification["user_id"] == customer_id
    assert "End-to-end concert" in notification["title"]

    def emailed() -> bool:
        return any("Booking confirmed" in str(m["Subject"]) for m in stack.smtp.to(customer_email))

    remaining = max(0.1, 5 - (time.monotonic() - paid_at))
    assert wait_until(emailed, remaining, interval=0.1), [
        str(m["Subject"]) for m in stack.smtp.messages
    ]
    # The welcome mail went out too, addressed from the contact replica's source message.
    assert wait_until(
        lambda: any("Welcome" in str(m["Subject"]) for m in stack.smtp.to(customer_email)), 5
    )
