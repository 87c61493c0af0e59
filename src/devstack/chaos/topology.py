"""What a running chaos stack offers the workload, the nemesis and the checker."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Topology:
    workdir: Path
    users_url: str
    booking_urls: list[str]  # one per booking instance (each its own gunicorn)
    notifications_url: str
    database_urls: dict[str, str]  # "users" | "booking" | "notifications" -> DATABASE_URL
    nats_urls: list[str]  # one per cluster node
    mail_dir: Path  # the SMTP sink writes one .eml file per message received
    webhook_url: str  # where the webhook receiver listens (endpoints registered here)
    webhook_log: Path  # the receiver appends one JSON line per delivery it answered 2xx
    accounts: list[dict[str, Any]] = field(default_factory=list)  # seeded: role, email, password
    settings: dict[str, str] = field(default_factory=dict)  # the knobs the services run with
