"""The services of the stack and the background processes each one runs.

A service is in the stack when its package exists. Each entry names the HTTP app and the
long-running workers (relay, sweeper, consumers) the stack command starts beside it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Worker:
    name: str
    command: tuple[str, ...]  # management command and its arguments


@dataclass(frozen=True)
class Service:
    name: str
    package: str
    port: int
    workers: tuple[Worker, ...] = field(default_factory=tuple)

    @property
    def settings_module(self) -> str:
        return f"{self.package}.settings"

    @property
    def database(self) -> str:
        return self.name

    @property
    def database_env(self) -> str:
        return f"{self.name.upper()}_DATABASE_URL"

    def exists(self) -> bool:
        if importlib.util.find_spec(self.package) is None:
            return False
        return importlib.util.find_spec(f"{self.package}.settings") is not None


ALL_SERVICES: tuple[Service, ...] = (
    Service("users", "users_service", 8000, workers=(Worker("relay", ("outbox_relay",)),)),
    Service(
        "booking",
        "booking_service",
        8001,
        workers=(
            Worker("relay", ("outbox_relay",)),
            Worker("sweeper", ("release_expired_holds", "--loop")),
        ),
    ),
    Service(
        "notifications",
        "notifications_service",
        8002,
        workers=(
            Worker("consumer", ("consume_events",)),
            Worker("dispatcher", ("dispatch_deliveries",)),
        ),
    ),
)


# The pages people use (events, checkout, tickets, the organizer's dashboard, the door
# scanner), in front of the three APIs, which it calls like any client. Apart from
# ALL_SERVICES because it publishes no API: the fuzzer is the API services'. The container
# image runs it too, as its `web` role (devstack.deploy.roles).
WEB_SERVICE = Service("web", "web_service", 8080)


def available_services() -> list[Service]:
    return [service for service in (*ALL_SERVICES, WEB_SERVICE) if service.exists()]


def api_services() -> list[Service]:
    """The available services that publish an HTTP API (and its OpenAPI schema)."""
    return [service for service in ALL_SERVICES if service.exists()]
