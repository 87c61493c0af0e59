"""A whole stack for the web service's tests: every service and worker as real processes on
free ports, fresh databases on the test run's PostgreSQL, a bus stream of their own on its
NATS, and a mail sink; the web service pointed at the three APIs.

Holds are short (`HOLD_SECONDS`) and the sweeper looks every second, so a test can watch a
hold's countdown reach 0:00 and its tickets come back.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from devstack.paths import free_port
from devstack.process import popen_owned, stop_groups
from devstack.services import Service, available_services
from devstack.stack import manage_argv, seed, server_argv
from servicekit.testing import wait_until

HOLD_SECONDS = 12
PASSWORD = "Turnstile-web-Pa55word"
NEEDED = ("users", "booking", "notifications", "web")


@dataclass
class Processes:
    """The stack's processes on their ports, each logging to a file of its own."""

    workdir: Path
    ports: dict[str, int] = field(default_factory=dict)
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def base_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        self.running[name] = popen_owned(argv, env=env, stdout=log, stderr=subprocess.STDOUT)

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.workdir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        stop_groups(self.running.values())


@dataclass
class WebStack:
    stack: Processes
    accounts: dict[str, dict[str, Any]]

    @property
    def web(self) -> str:
        return self.stack.base_url("web")

    def url(self, service: str) -> str:
        return self.stack.base_url(service)

    def call(
        self,
        method: str,
        service: str,
        path: str,
        body: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> tuple[int, Any]:
        """An API call straight to a service, as the tests' own setup makes them."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url(service) + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None

    def login(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        status, tokens = self.call(
            "POST", "users", "/api/users/login", {"email": email, "password": password}
        )
        assert status == 200, tokens
        return dict(tokens)

    def token(self, role: str) -> str:
        account = self.accounts[role]
        return str(self.login(account["email"], account["password"])["access"])

    def register(self, role: str = "customer") -> dict[str, Any]:
        """A new account: its email, password, id and a fresh access token."""
        email = f"{role}-{uuid.uuid4().hex[:10]}@example.com"
        status, body = self.call(
            "POST",
            "users",
            "/api/users/register",
            {"name": f"Web {role.title()}", "email": email, "password": PASSWORD, "role": role},
        )
        assert status == 201, body
        tokens = self.login(email)
        return {"email": email, "password": PASSWORD, "id": body["id"], "access": tokens["access"]}

    def create_event(self, organizer_token: str, **fields: Any) -> dict[str, Any]:
        body = {
            "name": f"Concert {uuid.uuid4().hex[:8]}",
            "description": "A night of music",
            "date": "2031-06-01",
            "time": "20:00",
            "location": "Main Hall",
            "total_tickets": 20,
            "price_per_ticket": "25.00",
            **fields,
        }
        status, event = self.call("POST", "booking", "/api/events/", body, organizer_token)
        assert status == 201, event
        return dict(event)

    def paid_booking(self, customer_token: str, event_id: int, tickets: int) -> dict[str, Any]:
        """A booking of the event's tickets, held and paid (tok_visa) through the API."""
        status, booking = self.call(
            "POST", "booking", "/api/bookings/", {"event": event_id, "tickets_booked": tickets},
            customer_token,
        )  # fmt: skip
        assert status == 201, booking
        status, payment = self.call(
            "POST", "booking", "/api/payments/",
            {"booking": booking["id"], "payment_token": "tok_visa"}, customer_token,
        )  # fmt: skip
        assert status == 201, payment
        return dict(booking)

    def tickets(self, customer_token: str, booking_id: int) -> list[dict[str, Any]]:
        """A paid booking's tickets (their signed codes) as the booking service lists them."""
        status, tickets = self.call(
            "GET", "booking", f"/api/bookings/{booking_id}/tickets/", token=customer_token
        )
        assert status == 200, tickets
        return list(tickets)


def _database_url(name: str) -> str:
    parts = urlsplit(os.environ["TURNSTILE_TEST_POSTGRES_URL"])
    return urlunsplit(parts._replace(path=f"/{name}"))


def _delete_stream(stream: str) -> None:
    from servicekit.bus import SyncBus, bus_config

    bus = SyncBus(bus_config(), name="web-tests-cleanup")
    try:
        bus.connect()
        bus.call(bus.js.delete_stream(stream))
    except Exception:  # noqa: S110  (the server may be gone: nothing to clean)
        pass
    finally:
        bus.close()


@contextlib.contextmanager
def web_stack(workdir: Path) -> Iterator[WebStack]:
    services = {service.name: service for service in available_services()}
    missing = [name for name in NEEDED if name not in services]
    if missing:
        raise RuntimeError(f"the web tests need the services {missing}")
    suffix = uuid.uuid4().hex[:8]
    databases = {name: f"webtest_{name}_{suffix}" for name in services}
    server = _database_url("postgres")
    with psycopg.connect(server, autocommit=True) as conn:
        for database in databases.values():
            conn.execute(f'CREATE DATABASE "{database}"')
    stream = f"WEBTEST_{suffix.upper()}"
    stack = Processes(workdir=workdir)
    stack.ports = {name: free_port() for name in services}
    mail_port = free_port()
    users = stack.base_url("users")
    try:
        stack.start(
            "mail",
            [sys.executable, "-m", "devstack.mailsink", "--port", str(mail_port),
             "--dir", str(workdir / "mail")],
            dict(os.environ, PYTHONUNBUFFERED="1"),
        )  # fmt: skip
        envs: dict[str, dict[str, str]] = {}
        secret_key = secrets.token_urlsafe(48)
        for name, service in services.items():
            env = dict(os.environ)
            env.update(
                {
                    "DJANGO_SETTINGS_MODULE": service.settings_module,
                    "DATABASE_URL": _database_url(databases[name]),
                    "SECRET_KEY": secret_key,
                    "PYTHONUNBUFFERED": "1",
                    "LOG_LEVEL": "WARNING",
                    "JWT_JWKS_URL": f"{users}/.well-known/jwks.json",
                    "EMAIL_HOST": "127.0.0.1",
                    "EMAIL_PORT": str(mail_port),
                    "MAIL_DIR": str(workdir / "mail"),
                    "NATS_STREAM": stream,
                    "NATS_SUBJECT_PREFIX": f"webtest{suffix}",
                    "BOOKING_HOLD_SECONDS": str(HOLD_SECONDS),
                    "BOOKING_SWEEP_INTERVAL_SECONDS": "1",
                    "USERS_API_URL": users,
                    "BOOKING_API_URL": stack.base_url("booking"),
                    "NOTIFICATIONS_API_URL": stack.base_url("notifications"),
                    # Every test's browser comes from 127.0.0.1: per-address limits would
                    # soon refuse the suite's registrations and logins. Per-account and
                    # per-user limits stay as they are.
                    "RATE_LIMIT_LOGIN_PER_ADDRESS": "off",
                    "RATE_LIMIT_REGISTER_PER_ADDRESS": "off",
                    "RATE_LIMIT_REFRESH_PER_ADDRESS": "off",
                    "RATE_LIMIT_BOOKING_PER_ADDRESS": "off",
                    "RATE_LIMIT_PAYMENT_PER_ADDRESS": "off",
                    # The webhook tests' receiver listens on 127.0.0.1.
                    "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
                    "ARGON2_MEMORY_COST_KIB": "8192",
                    "ARGON2_TIME_COST": "1",
                }
            )
            envs[name] = env
        _migrate_all(services, envs)
        context = seed(list(services.values()), envs)
        for name, service in services.items():
            argv = server_argv(service, 2, host="127.0.0.1", port=stack.ports[name])
            stack.start(name, argv, envs[name])
            for worker in service.workers:
                argv = manage_argv(service, *worker.command)
                stack.start(f"{name}-{worker.name}", argv, envs[name])
        for name in services:
            base = stack.base_url(name)
            if not wait_until(functools.partial(_live, base), timeout=90):
                raise RuntimeError(f"{name} did not start:\n{stack.log_tail(name)}")
        accounts = {a["role"]: a for a in context.get("users", {}).get("accounts", [])}
        yield WebStack(stack=stack, accounts=accounts)
    finally:
        stack.stop()
        _delete_stream(stream)
        with psycopg.connect(server, autocommit=True) as conn:
            for database in databases.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _migrate_all(services: dict[str, Service], envs: dict[str, dict[str, str]]) -> None:
    """Every service's migrations at once: each has a database of its own."""
    running = {
        name: subprocess.Popen(
            manage_argv(service, "migrate", "--noinput", "-v", "0"),
            env=envs[name],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for name, service in services.items()
    }
    failed = {}
    for name, process in running.items():
        output, _ = process.communicate(timeout=300)
        if process.returncode != 0:
            failed[name] = output.decode(errors="replace")[-3000:]
    if failed:
        raise RuntimeError(f"migrations failed: {failed}")


def _live(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/health/live", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False
