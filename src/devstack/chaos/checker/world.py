"""Reading the run and the system: what the history says (the run's users and operations),
and what the databases, the mailbox and the webhook log hold."""

from __future__ import annotations

import datetime as dt
import email.parser
import email.utils
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from devstack.chaos.history import Pair, pairs
from devstack.chaos.topology import Topology


def query(url: str, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True, connect_timeout=5, row_factory=dict_row) as conn:
        return conn.execute(sql, list(params)).fetchall()


@dataclass
class Run:
    """What the history says: the run's users and its operations."""

    entries: list[dict[str, Any]]
    ops: list[Pair]
    customers: dict[str, str]  # user id -> email
    organizers: dict[str, str]
    started_wall: float | None

    @classmethod
    def read(cls, entries: list[dict[str, Any]]) -> Run:
        ops = pairs(entries)
        customers: dict[str, str] = {}
        organizers: dict[str, str] = {}
        for op in ops:
            if op.f not in ("register", "login") or op.type != "ok":
                continue
            body = op.result.get("body") or {}
            user = body.get("user", body)
            if "id" not in user:
                continue
            target = organizers if user.get("role") == "organizer" else customers
            target[str(user["id"])] = str(user.get("email", "")).lower()
        walls = [float(e["wall"]) for e in entries if "wall" in e]
        return cls(entries, ops, customers, organizers, min(walls) if walls else None)

    @property
    def users(self) -> dict[str, str]:
        return {**self.customers, **self.organizers}


def user_ids(values: Iterable[str]) -> list[str]:
    return sorted(values) or ["00000000-0000-0000-0000-000000000000"]


@dataclass
class World:
    """The databases, the mailbox and the webhook log, read once the system has healed."""

    events: list[dict[str, Any]]
    bookings: list[dict[str, Any]]
    payments: list[dict[str, Any]]
    keys: list[dict[str, Any]]
    outbox: list[dict[str, Any]]
    notifications: list[dict[str, Any]]
    endpoints: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]
    dead_letters: list[dict[str, Any]]
    overlaps: list[dict[str, Any]]
    emails: list[dict[str, str]]  # message_id, to
    webhook_log: list[dict[str, Any]]

    @classmethod
    def read(cls, topology: Topology, run: Run) -> World:
        booking = topology.database_urls["booking"]
        notifications = topology.database_urls["notifications"]
        customers = user_ids(run.customers)
        users = user_ids(run.users)
        organizers = user_ids(run.organizers)
        since = dt.datetime.fromtimestamp((run.started_wall or 0) - 5, tz=dt.UTC)
        return cls(
            events=query(booking, "SELECT * FROM events ORDER BY id"),
            bookings=query(booking, "SELECT * FROM bookings ORDER BY id"),
            payments=query(booking, "SELECT * FROM payments ORDER BY id"),
            keys=query(
                booking,
                "SELECT owner, endpoint, key, response_status, response_body, recovery_point"
                " FROM idempotency_keys WHERE owner = ANY(%s)",
                [customers],
            ),
            outbox=query(
                booking,
                "SELECT message_id, type, data, sent_at FROM outbox_messages ORDER BY id",
            )
            + query(
                topology.database_urls["users"],
                "SELECT message_id, type, data, sent_at FROM outbox_messages"
                " WHERE data->>'user_id' = ANY(%s) ORDER BY id",
                [users],
            ),
            notifications=query(
                notifications,
                "SELECT n.id, n.user_id, n.kind, n.data, n.source_message_id,"
                " e.status AS email_status, e.to_email"
                " FROM notifications_notification n"
                " LEFT JOIN notifications_emaildelivery e ON e.notification_id = n.id"
                " WHERE n.user_id = ANY(%s) ORDER BY n.id",
                [users],
            ),
            endpoints=query(
                notifications,
                "SELECT * FROM webhooks_webhookendpoint WHERE organizer_id = ANY(%s)",
                [organizers],
            ),
            deliveries=query(
                notifications,
                "SELECT d.id, d.endpoint_id, d.message_id, d.message_type, d.status"
                " FROM webhooks_webhookdelivery d JOIN webhooks_webhookendpoint w"
                " ON w.id = d.endpoint_id WHERE w.organizer_id = ANY(%s)",
                [organizers],
            ),
            dead_letters=query(
                notifications,
                "SELECT id, consumer, subject, stream_sequence, payload, error"
                " FROM inbox_deadletter WHERE created_at >= %s ORDER BY id",
                [since],
            ),
            overlaps=query(
                booking,
                "SELECT a.id AS first, b.id AS second, a.resource_id FROM bookings a"
                " JOIN bookings b ON a.resource_id = b.resource_id AND a.id < b.id"
                " WHERE a.status IN ('pending', 'confirmed')"
                " AND b.status IN ('pending', 'confirmed')"
                " AND tstzrange(a.start_time, a.end_time) && tstzrange(b.start_time, b.end_time)",
            ),
            emails=read_mail(topology.mail_dir, set(run.users.values())),
            webhook_log=read_webhook_log(topology.webhook_log),
        )


def read_mail(mail_dir: Path, addresses: set[str]) -> list[dict[str, str]]:
    """`Message-ID` and recipient of every message to one of `addresses` in the sink."""
    parser = email.parser.BytesHeaderParser()
    found = []
    for path in sorted(mail_dir.glob("*.eml")) if mail_dir.exists() else []:
        with path.open("rb") as file:
            headers = parser.parse(file)
        to = email.utils.parseaddr(str(headers.get("To", "")))[1].lower()
        if to in addresses:
            found.append({"message_id": str(headers.get("Message-ID", "")).strip(), "to": to})
    return found


def read_webhook_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a killed receiver
    return lines
