"""The verdict on a chaos run: the history against what the databases, mailbox and webhook
log hold once the system has healed.

`check(topology, history_path)` first waits (up to `heal_timeout`) until nothing is left in
flight: no booking `pending` (every hold paid, canceled or released by the sweeper) and no
payment `pending` (settled with the provider), no successful payment of a canceled booking
left unrefunded, the users and booking outboxes drained, every notifications consumer
caught up (JetStream: `num_pending` and `num_ack_pending` 0), no email or webhook delivery
still waiting for an attempt. The conditions are read upstream first (bookings, outboxes,
the stream, deliveries) and must hold twice in a row. What never heals is a violation.

Then, one sentence per violation, naming ids:

Inventory (every event and resource in the database)
- no event oversold: `available_tickets >= 0` and the tickets of pending and confirmed
  bookings at most `total_tickets`;
- conservation: `total_tickets = available + held (pending) + sold (confirmed)`;
- no two pending or confirmed bookings of one resource overlap;
- a canceled event has no pending or confirmed booking.

Acknowledged operations (the run's own users; `ok` completions)
- every booking an answer named exists, is the caller's, for the event or the slot asked;
- every payment an answer named exists, of that booking; a 201 is `success` (`refunded` if
  its booking is canceled now), a 402 `failed`, a 409 `hold-expired` `refunded`;
- a booking whose cancel was acknowledged is canceled; a change acknowledged sets
  `tickets_booked`, unless a later change's outcome is unknown (either value then);
- a confirmed booking has exactly one `success` payment; a `success` payment's booking is
  confirmed; a canceled booking has none left unrefunded;
- nothing happens unasked: a booking canceled with `reason: user` had a cancel request, a
  confirmed booking a payment request, one canceled with its event a canceled event;
- an event's `total_tickets` is what the last acknowledged change set (or an unknown
  change after it); an event a cancel was acknowledged for is canceled; an event creation
  (no key: an unknown one may have happened or not) made at most one event (by its name).

One effect per key (`Idempotency-Key`, recorded with the change it stands for)
- every booking of the run's customers is named by exactly one key record
  (`idempotency_keys.response_body.id` of `POST bookings.create`): the booking and its
  key's answer commit together, so a booking no record names was made by a request whose
  key was lost, and a retry of that key made another one (the key had two effects);
- every payment is named by exactly one key record (its `recovery_point.payment`, or the
  answer's `id` or `payment.id`);
- every answer a key got (first or replayed) names the one booking or payment its record
  names. Unknown operations are always retried with their key, so these rules cover them.

Messages (facts from the database state: a confirmed booking, a booking canceled by its
user or an admin, an expired hold, an event canceled under a booking, a payment succeeded,
failed or refunded, a registered user). For each fact of the run's users:
- exactly one outbox event about it (`payment.succeeded` per booking: one if it was ever
  confirmed, else none);
- exactly one notification to its user;
- exactly one email, counted by distinct `Message-ID` (a copy resent under the same id is
  allowed: mail is at least once), addressed to the user's address;
- for each event about the run organizers' events, one webhook delivery per matching
  active endpoint, `succeeded`, and at least one request in the webhook log with its
  `Turnstile-Delivery-Id` and `Turnstile-Event-Id`.

Dead letters (those written since the run started): exactly one per consumer named in each
injected poison (found by the poison's id in the payload), and no other.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.parser
import email.utils
import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from devstack.chaos.history import Pair, load, pairs
from devstack.chaos.topology import Topology

DURABLES = ("notifications-contacts", "notifications-notify", "notifications-webhooks")
WEBHOOK_TYPES = frozenset(
    {
        "event.created",
        "event.updated",
        "event.canceled",
        "booking.created",
        "booking.confirmed",
        "booking.canceled",
        "booking.expired",
        "payment.succeeded",
        "payment.failed",
        "payment.refunded",
    }
)
MESSAGE_ID = re.compile(r"<notification-(\d+)@")
BOOKING_ENDPOINT = "POST bookings.create"
PAYMENT_ENDPOINT = "POST payments.create"

# A fact: (user id, message type, the id it is about: booking, payment or event; or None).
Fact = tuple[str, str, int | None]


@dataclass
class Verdict:
    violations: list[str]
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "violations": self.violations, "stats": self.stats}

    def table(self) -> str:
        lines = [f"{'operation':<16}{'ok':>8}{'fail':>8}{'info':>8}"]
        for f, counts in sorted(self.stats.get("operations", {}).items()):
            lines.append(
                f"{f:<16}{counts.get('ok', 0):>8}{counts.get('fail', 0):>8}"
                f"{counts.get('info', 0):>8}"
            )
        lines.append("")
        faults = self.stats.get("faults", {})
        lines.append(f"{'fault':<24}{'count':>8}")
        for kind, count in sorted(faults.items()):
            lines.append(f"{kind:<24}{count:>8}")
        if not faults:
            lines.append(f"{'(none)':<24}{0:>8}")
        lines.append("")
        heal = self.stats.get("time_to_heal")
        lines.append(f"{'time to heal':<24}{'never' if heal is None else f'{heal:.1f} s':>8}")
        lines.append(f"{'violations':<24}{len(self.violations):>8}")
        lines.extend(f"  - {violation}" for violation in self.violations)
        return "\n".join(lines)


# -- reading the world -------------------------------------------------------------------


def _query(url: str, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
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


def _ids(values: Iterable[str]) -> list[str]:
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
        customers = _ids(run.customers)
        users = _ids(run.users)
        organizers = _ids(run.organizers)
        since = dt.datetime.fromtimestamp((run.started_wall or 0) - 5, tz=dt.UTC)
        return cls(
            events=_query(booking, "SELECT * FROM events ORDER BY id"),
            bookings=_query(booking, "SELECT * FROM bookings ORDER BY id"),
            payments=_query(booking, "SELECT * FROM payments ORDER BY id"),
            keys=_query(
                booking,
                "SELECT owner, endpoint, key, response_status, response_body, recovery_point"
                " FROM idempotency_keys WHERE owner = ANY(%s)",
                [customers],
            ),
            outbox=_query(
                booking,
                "SELECT event_id, type, data, sent_at FROM outbox_outboxevent ORDER BY id",
            )
            + _query(
                topology.database_urls["users"],
                "SELECT event_id, type, data, sent_at FROM outbox_outboxevent"
                " WHERE data->>'user_id' = ANY(%s) ORDER BY id",
                [users],
            ),
            notifications=_query(
                notifications,
                "SELECT n.id, n.user_id, n.kind, n.data, n.source_event_id,"
                " e.status AS email_status, e.to_email"
                " FROM notifications_notification n"
                " LEFT JOIN notifications_emaildelivery e ON e.notification_id = n.id"
                " WHERE n.user_id = ANY(%s) ORDER BY n.id",
                [users],
            ),
            endpoints=_query(
                notifications,
                "SELECT * FROM webhooks_webhookendpoint WHERE organizer_id = ANY(%s)",
                [organizers],
            ),
            deliveries=_query(
                notifications,
                "SELECT d.id, d.endpoint_id, d.event_id, d.event_type, d.status"
                " FROM webhooks_webhookdelivery d JOIN webhooks_webhookendpoint w"
                " ON w.id = d.endpoint_id WHERE w.organizer_id = ANY(%s)",
                [organizers],
            ),
            dead_letters=_query(
                notifications,
                "SELECT id, consumer, subject, stream_sequence, payload, error"
                " FROM inbox_deadletter WHERE created_at >= %s ORDER BY id",
                [since],
            ),
            overlaps=_query(
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


# -- healing -----------------------------------------------------------------------------


def _consumer_backlog(topology: Topology) -> list[str]:
    import nats

    stream = topology.settings.get("NATS_STREAM", "TURNSTILE")

    async def ask() -> list[str]:
        client = await nats.connect(
            servers=list(topology.nats_urls), connect_timeout=3, max_reconnect_attempts=1
        )
        try:
            js = client.jetstream(timeout=5)
            waiting = []
            for durable in DURABLES:
                info = await js.consumer_info(stream, durable)
                if info.num_pending or info.num_ack_pending:
                    waiting.append(
                        f"consumer {durable}: {info.num_pending} pending,"
                        f" {info.num_ack_pending} unacknowledged"
                    )
            return waiting
        finally:
            await client.close()

    try:
        return asyncio.run(ask())
    except Exception as exc:
        return [f"NATS consumers unreadable: {type(exc).__name__}: {exc}"]


def unhealed(topology: Topology, run: Run) -> list[str]:
    """What is still in flight, upstream first; empty when the system is at rest."""
    urls = topology.database_urls
    customers, users, organizers = _ids(run.customers), _ids(run.users), _ids(run.organizers)
    checks = [
        (
            urls["booking"],
            "SELECT count(*) AS n FROM bookings"
            " WHERE status = 'pending' AND user_id::text = ANY(%s)",
            [customers],
            "pending bookings",
        ),
        (
            urls["booking"],
            "SELECT count(*) AS n FROM payments WHERE status = 'pending'",
            [],
            "pending payments",
        ),
        (
            urls["booking"],
            "SELECT count(*) AS n FROM payments p JOIN bookings b ON b.id = p.booking_id"
            " WHERE p.status = 'success' AND b.status = 'canceled'",
            [],
            "unrefunded payments of canceled bookings",
        ),
        (
            urls["users"],
            "SELECT count(*) AS n FROM outbox_outboxevent WHERE sent_at IS NULL",
            [],
            "unsent users outbox events",
        ),
        (
            urls["booking"],
            "SELECT count(*) AS n FROM outbox_outboxevent WHERE sent_at IS NULL",
            [],
            "unsent booking outbox events",
        ),
    ]
    waiting = []
    for url, sql, params, what in checks:
        try:
            count = _query(url, sql, params)[0]["n"]
        except psycopg.Error as exc:
            return [f"database unreachable: {type(exc).__name__}: {exc}".strip()]
        if count:
            waiting.append(f"{count} {what}")
    if waiting:
        return waiting
    waiting = _consumer_backlog(topology)
    if waiting:
        return waiting
    deliveries = [
        (
            "SELECT count(*) AS n FROM notifications_emaildelivery e JOIN"
            " notifications_notification n ON n.id = e.notification_id"
            " WHERE e.status = 'pending' AND n.user_id = ANY(%s)",
            [users],
            "pending emails",
        ),
        (
            "SELECT count(*) AS n FROM webhooks_webhookdelivery d JOIN webhooks_webhookendpoint w"
            " ON w.id = d.endpoint_id WHERE d.status = 'pending' AND w.organizer_id = ANY(%s)",
            [organizers],
            "pending webhook deliveries",
        ),
    ]
    for sql, params, what in deliveries:
        try:
            count = _query(urls["notifications"], sql, params)[0]["n"]
        except psycopg.Error as exc:
            return [f"database unreachable: {type(exc).__name__}: {exc}".strip()]
        if count:
            waiting.append(f"{count} {what}")
    return waiting


def wait_healed(topology: Topology, run: Run, *, timeout: float) -> tuple[float | None, list[str]]:
    """(seconds it took, None if it never did; what was still in flight at the end)."""
    start = time.monotonic()
    clear_since: float | None = None
    waiting: list[str] = []
    while True:
        waiting = unhealed(topology, run)
        now = time.monotonic()
        if not waiting:
            if clear_since is not None:
                return clear_since - start, []
            clear_since = now
        else:
            clear_since = None
        if now - start > timeout:
            return None, waiting
        time.sleep(0.5)


# -- the rules ---------------------------------------------------------------------------


def _problem(op: Pair) -> str:
    body = op.result.get("body")
    if isinstance(body, dict):
        return str(body.get("code") or body.get("type") or "").rsplit(":", 1)[-1]
    return ""


def _answered_payment(op: Pair) -> dict[str, Any] | None:
    body = op.result.get("body")
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("payment"), dict):
        return body["payment"]
    return body if "id" in body and "booking" in body else None


def _key_claim(record: dict[str, Any]) -> int | None:
    """The booking or payment a key record names: what its request made."""
    point, body = record.get("recovery_point"), record.get("response_body")
    if isinstance(point, dict) and point.get("payment") is not None:
        return int(point["payment"])
    if not isinstance(body, dict):
        return None
    if record.get("response_status") in (200, 201, 202) and body.get("id") is not None:
        return int(body["id"])
    payment = body.get("payment")
    if isinstance(payment, dict) and payment.get("id") is not None:
        return int(payment["id"])
    return None


def _same_time(a: Any, b: Any) -> bool:
    def parse(value: Any) -> dt.datetime | None:
        if isinstance(value, dt.datetime):
            return value
        try:
            return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None

    return parse(a) == parse(b)


class Checker:
    def __init__(self, run: Run, world: World, poison: list[dict[str, Any]]) -> None:
        self.run = run
        self.world = world
        self.poison = poison
        self.violations: list[str] = []
        self.bookings = {int(b["id"]): b for b in world.bookings}
        self.payments = {int(p["id"]): p for p in world.payments}
        self.events = {int(e["id"]): e for e in world.events}
        self.run_bookings = {
            i: b for i, b in self.bookings.items() if str(b["user_id"]) in run.customers
        }
        self.run_payments = {
            i: p for i, p in self.payments.items() if str(p["user_id"]) in run.customers
        }

    def say(self, sentence: str) -> None:
        self.violations.append(sentence)

    def verify(self) -> list[str]:
        self.inventory()
        self.acknowledged_bookings()
        self.acknowledged_payments()
        self.booking_payment_agreement()
        self.events_as_acknowledged()
        self.one_effect_per_key()
        self.messages()
        self.dead_letters()
        return self.violations

    # inventory ---------------------------------------------------------------------------

    def inventory(self) -> None:
        held: Counter[int] = Counter()
        sold: Counter[int] = Counter()
        for booking in self.world.bookings:
            if booking["event_id"] is None:
                continue
            if booking["status"] == "pending":
                held[int(booking["event_id"])] += int(booking["tickets_booked"])
            elif booking["status"] == "confirmed":
                sold[int(booking["event_id"])] += int(booking["tickets_booked"])
        for event_id, event in self.events.items():
            total, available = int(event["total_tickets"]), int(event["available_tickets"])
            taken = held[event_id] + sold[event_id]
            if available < 0 or taken > total:
                self.say(
                    f"event {event_id} is oversold: {taken} tickets held or sold of"
                    f" {total}, available {available}"
                )
            if total != available + taken:
                self.say(
                    f"event {event_id} does not conserve tickets: total {total} !="
                    f" available {available} + held {held[event_id]} + sold {sold[event_id]}"
                )
            if event["status"] == "canceled" and taken:
                self.say(f"event {event_id} is canceled but {taken} of its tickets are taken")
        for overlap in self.world.overlaps:
            self.say(
                f"resource {overlap['resource_id']} is double-booked: bookings"
                f" {overlap['first']} and {overlap['second']} overlap"
            )

    # acknowledged operations -------------------------------------------------------------

    def _ops(self, f: str) -> list[Pair]:
        return [op for op in self.run.ops if op.f == f]

    def acknowledged_bookings(self) -> None:
        for op in self._ops("book"):
            body = op.result.get("body")
            if op.type != "ok" or not isinstance(body, dict):
                continue
            booking_id = int(body["id"])
            row = self.bookings.get(booking_id)
            asked = op.request.get("body") or {}
            if row is None:
                self.say(
                    f"booking {booking_id}, acknowledged to {op.process} (key {op.key}), is missing"
                )
                continue
            if str(row["user_id"]) != str(op.request.get("user")):
                self.say(f"booking {booking_id} belongs to {row['user_id']}, not its booker")
            if "event" in asked and row["event_id"] != asked["event"]:
                self.say(
                    f"booking {booking_id} is for event {row['event_id']}, not {asked['event']}"
                )
            if "resource" in asked and (
                row["resource_id"] != asked["resource"]
                or not _same_time(row["start_time"], asked["start_time"])
                or not _same_time(row["end_time"], asked["end_time"])
            ):
                self.say(f"booking {booking_id} is not the slot its booker asked for")
        for op in self._ops("cancel"):
            booking_id = int(op.request["booking"])
            row = self.bookings.get(booking_id)
            if op.type == "ok" and (row is None or row["status"] != "canceled"):
                status = "missing" if row is None else row["status"]
                self.say(f"booking {booking_id} was canceled (acknowledged) but is {status}")
        self._changes_hold()

    def _changes_hold(self) -> None:
        allowed: dict[int, set[int]] = {}
        for op in self._ops("change"):
            booking_id = int(op.request["booking"])
            tickets = int((op.request.get("body") or {})["tickets_booked"])
            if op.type == "ok":
                allowed[booking_id] = {tickets}
            elif op.type == "info" and booking_id in allowed:
                allowed[booking_id].add(tickets)
        for booking_id, values in allowed.items():
            row = self.bookings.get(booking_id)
            if row is not None and int(row["tickets_booked"]) not in values:
                self.say(
                    f"booking {booking_id} has {row['tickets_booked']} tickets; the last"
                    f" acknowledged change set {sorted(values)}"
                )

    def acknowledged_payments(self) -> None:
        for op in self._ops("pay"):
            answered = _answered_payment(op)
            if op.type != "ok" or answered is None:
                continue
            payment_id = int(answered["id"])
            row = self.payments.get(payment_id)
            if row is None:
                self.say(
                    f"payment {payment_id}, acknowledged to {op.process} (key {op.key}), is missing"
                )
                continue
            booking_id = int(op.request["booking"])
            if int(row["booking_id"]) != booking_id:
                self.say(
                    f"payment {payment_id} is of booking {row['booking_id']}, not {booking_id}"
                )
            booking = self.bookings.get(int(row["booking_id"]), {})
            status, code = op.result.get("status"), _problem(op)
            if status == 201:
                wanted = {"refunded"} if booking.get("status") == "canceled" else {"success"}
            elif status == 402:
                wanted = {"failed"}
            elif status == 409 and code == "hold-expired":
                wanted = {"refunded"}
            else:  # 202: the outcome was unknown; settled by now, any way
                wanted = {"success", "failed", "refunded"}
            if row["status"] not in wanted:
                self.say(
                    f"payment {payment_id} answered {status} is {row['status']},"
                    f" not {' or '.join(sorted(wanted))}"
                )

    def booking_payment_agreement(self) -> None:
        live: dict[int, list[int]] = defaultdict(list)
        for payment_id, payment in self.payments.items():
            if payment["status"] == "success":
                live[int(payment["booking_id"])].append(payment_id)
        asked_to_pay = {int(op.request["booking"]) for op in self._ops("pay") if op.type != "fail"}
        asked_to_cancel = {
            int(op.request["booking"]) for op in self._ops("cancel") if op.type != "fail"
        }
        for booking_id, booking in self.run_bookings.items():
            paid = live.get(booking_id, [])
            if booking["status"] == "confirmed" and len(paid) != 1:
                self.say(
                    f"confirmed booking {booking_id} has {len(paid)} successful payments {paid}"
                )
            if booking["status"] != "confirmed" and paid:
                self.say(
                    f"booking {booking_id} is {booking['status']} but payment {paid} is success"
                )
            if booking["confirmed_at"] is not None and booking_id not in asked_to_pay:
                self.say(f"booking {booking_id} was confirmed though nobody paid for it")
            reason = booking["cancel_reason"]
            if reason == "user" and booking_id not in asked_to_cancel:
                self.say(f"booking {booking_id} was canceled by its user, who never asked")
            event = self.events.get(int(booking["event_id"] or 0))
            if reason == "event_canceled" and (event is None or event["status"] != "canceled"):
                self.say(f"booking {booking_id} was canceled with its event, which is not canceled")

    def events_as_acknowledged(self) -> None:
        names: Counter[str] = Counter(str(e["name"]) for e in self.world.events)
        for op in self._ops("create-event"):
            name = str((op.request.get("body") or {}).get("name"))
            if names[name] > 1:
                self.say(f"event creation {name!r} made {names[name]} events")
            if op.type == "ok" and names[name] == 0:
                self.say(f"event {name!r}, acknowledged, is missing")
        totals: dict[int, set[int]] = {}
        for op in self._ops("update-event"):
            event_id, body = int(op.request["event"]), op.request.get("body") or {}
            if "total_tickets" not in body:
                continue
            if op.type == "ok":
                totals[event_id] = {int(body["total_tickets"])}
            elif op.type == "info" and event_id in totals:
                totals[event_id].add(int(body["total_tickets"]))
        for event_id, values in totals.items():
            event = self.events.get(event_id)
            if event is not None and int(event["total_tickets"]) not in values:
                self.say(
                    f"event {event_id} has total_tickets {event['total_tickets']}; the last"
                    f" acknowledged change set {sorted(values)}"
                )
        for op in self._ops("cancel-event"):
            event = self.events.get(int(op.request["event"]))
            if op.type == "ok" and (event is None or event["status"] != "canceled"):
                self.say(f"event {op.request['event']} was canceled (acknowledged) but is not")

    # keys --------------------------------------------------------------------------------

    def one_effect_per_key(self) -> None:
        claims: dict[tuple[str, int], list[str]] = defaultdict(list)
        claimed_by_key: dict[tuple[str, str, str], int | None] = {}
        for record in self.world.keys:
            kind = {BOOKING_ENDPOINT: "booking", PAYMENT_ENDPOINT: "payment"}.get(
                str(record["endpoint"])
            )
            if kind is None:
                continue
            claim = _key_claim(record)
            claimed_by_key[(kind, str(record["owner"]), str(record["key"]))] = claim
            if claim is not None:
                claims[(kind, claim)].append(str(record["key"]))
        for kind, rows in (("booking", self.run_bookings), ("payment", self.run_payments)):
            for row_id, row in rows.items():
                keys = claims.get((kind, row_id), [])
                if len(keys) == 1:
                    continue
                if not keys:
                    self.say(
                        f"{kind} {row_id} of user {row['user_id']} (created {row['created_at']})"
                        f" is named by no Idempotency-Key record: its key lost it, and a retry"
                        f" may have made another{self._suspects(kind, row)}"
                    )
                else:
                    self.say(f"{kind} {row_id} is named by several keys: {sorted(keys)}")
        answers: dict[tuple[str, str], set[int]] = defaultdict(set)
        for op in self.run.ops:
            if op.f not in ("book", "pay") or op.type != "ok" or op.key is None:
                continue
            kind = "booking" if op.f == "book" else "payment"
            answered = op.result.get("body") if kind == "booking" else _answered_payment(op)
            if isinstance(answered, dict) and answered.get("id") is not None:
                answers[(kind, op.key)].add(int(answered["id"]))
                named = claimed_by_key.get((kind, str(op.request.get("user")), op.key))
                if named is not None and named != int(answered["id"]):
                    self.say(
                        f"key {op.key} answered {kind} {answered['id']} but its record names"
                        f" {kind} {named}"
                    )
        for (kind, key), ids in answers.items():
            if len(ids) > 1:
                self.say(f"key {key} had {len(ids)} effects: {kind}s {sorted(ids)}")

    def _suspects(self, kind: str, row: dict[str, Any]) -> str:
        """The keys whose request could have made an unnamed row: same user, same body."""
        keys = set()
        for op in self._ops("book" if kind == "booking" else "pay"):
            asked = op.request.get("body") or {}
            if str(op.request.get("user")) != str(row["user_id"]) or op.key is None:
                continue
            if kind == "payment":
                match = asked.get("booking") == row["booking_id"]
            elif row["event_id"] is not None:
                match = asked.get("event") == row["event_id"]
            else:
                match = asked.get("resource") == row["resource_id"] and _same_time(
                    asked.get("start_time"), row["start_time"]
                )
            if match:
                keys.add(op.key)
        return f" (keys asking for it: {', '.join(sorted(keys))})" if keys else ""

    # messages ----------------------------------------------------------------------------

    def expected_facts(self) -> tuple[dict[Fact, int], dict[Fact, tuple[int, int]]]:
        """Facts that must be told exactly once, and those told at most once (a refunded
        payment's success, counted per booking instead)."""
        exact: dict[Fact, int] = {}
        for user_id in self.run.users:
            exact[(user_id, "user.registered", None)] = 1
        for booking_id, booking in self.run_bookings.items():
            user = str(booking["user_id"])
            if booking["confirmed_at"] is not None:
                exact[(user, "booking.confirmed", booking_id)] = 1
            reason = booking["cancel_reason"]
            if booking["status"] == "canceled" and reason in ("user", "admin"):
                exact[(user, "booking.canceled", booking_id)] = 1
            elif booking["status"] == "canceled" and reason == "expired":
                exact[(user, "booking.expired", booking_id)] = 1
            elif booking["status"] == "canceled" and reason == "event_canceled":
                exact[(user, "event.canceled", int(booking["event_id"]))] = 1
        loose: dict[Fact, tuple[int, int]] = {}
        for payment_id, payment in self.run_payments.items():
            user = str(payment["user_id"])
            status = payment["status"]
            if status == "failed":
                exact[(user, "payment.failed", payment_id)] = 1
            elif status == "success":
                exact[(user, "payment.succeeded", payment_id)] = 1
            elif status == "refunded":
                exact[(user, "payment.refunded", payment_id)] = 1
                loose[(user, "payment.succeeded", payment_id)] = (0, 1)
        return exact, loose

    @staticmethod
    def fact_of(kind: str, data: dict[str, Any], user: str) -> Fact:
        subject = {
            "booking.confirmed": "booking_id",
            "booking.canceled": "booking_id",
            "booking.expired": "booking_id",
            "payment.succeeded": "payment_id",
            "payment.failed": "payment_id",
            "payment.refunded": "payment_id",
            "event.canceled": "event_id",
        }.get(kind)
        value = data.get(subject) if subject else None
        return (user, kind, None if value is None else int(value))

    def _compare(self, what: str, counted: Counter[Fact]) -> None:
        exact, loose = self.expected_facts()
        for fact, wanted in exact.items():
            if counted[fact] != wanted:
                self.say(f"{self._fact_name(fact)} produced {counted[fact]} {what}, not {wanted}")
        for fact, count in counted.items():
            if fact in exact:
                continue
            low, high = loose.get(fact, (0, 0))
            if not low <= count <= high:
                self.say(f"{self._fact_name(fact)} produced {count} {what}, not expected")
        succeeded: Counter[int] = Counter()
        for (_, kind, payment_id), count in counted.items():
            if kind == "payment.succeeded" and payment_id in self.payments:
                succeeded[int(self.payments[payment_id]["booking_id"])] += count
        for booking_id, booking in self.run_bookings.items():
            wanted = 1 if booking["confirmed_at"] is not None else 0
            if succeeded[booking_id] != wanted:
                self.say(
                    f"booking {booking_id} ({'once confirmed' if wanted else 'never confirmed'})"
                    f" has {succeeded[booking_id]} payment.succeeded {what}"
                )

    @staticmethod
    def _fact_name(fact: Fact) -> str:
        user, kind, subject = fact
        about = f" {subject}" if subject is not None else ""
        noun = kind.split(".")[0]
        return f"{kind} ({noun}{about}, user {user})"

    def messages(self) -> None:
        run_users = set(self.run.users)
        told: Counter[Fact] = Counter()
        for event in self.world.outbox:
            data = event["data"] or {}
            if event["type"] == "event.canceled":
                for user in {str(u) for u in data.get("affected_user_ids") or []}:
                    if user in run_users:
                        told[self.fact_of(event["type"], data, user)] += 1
            elif str(data.get("user_id")) in run_users:
                told[self.fact_of(event["type"], data, str(data.get("user_id")))] += 1
        interesting = {"user.registered", "event.canceled", "booking.confirmed"}
        interesting |= {"booking.canceled", "booking.expired"}
        interesting |= {"payment.succeeded", "payment.failed", "payment.refunded"}
        outbox_told = Counter({k: v for k, v in told.items() if k[1] in interesting})
        # booking.canceled of a canceled event is told by event.canceled; not a fact itself.
        for fact in [f for f in outbox_told if f[1] == "booking.canceled"]:
            booking = self.bookings.get(int(fact[2] or 0))
            if booking is not None and booking["cancel_reason"] == "event_canceled":
                del outbox_told[fact]
        self._compare("outbox events", outbox_told)

        notified: Counter[Fact] = Counter()
        by_id: dict[int, dict[str, Any]] = {}
        for notification in self.world.notifications:
            by_id[int(notification["id"])] = notification
            fact = self.fact_of(
                notification["kind"], notification["data"] or {}, str(notification["user_id"])
            )
            notified[fact] += 1
        self._compare("notifications", notified)

        message_ids: dict[Fact, set[str]] = defaultdict(set)
        copies = 0
        seen: set[str] = set()
        for mail in self.world.emails:
            match = MESSAGE_ID.search(mail["message_id"])
            mailed = by_id.get(int(match.group(1))) if match else None
            if mailed is None:
                self.say(f"email {mail['message_id']} to {mail['to']} is of no notification")
                continue
            user = str(mailed["user_id"])
            if mail["to"] != self.run.users.get(user, ""):
                self.say(
                    f"email {mail['message_id']} went to {mail['to']}, not to user {user}"
                    f" ({self.run.users.get(user)})"
                )
            fact = self.fact_of(mailed["kind"], mailed["data"] or {}, user)
            copies += mail["message_id"] in seen
            seen.add(mail["message_id"])
            message_ids[fact].add(mail["message_id"])
        self._compare("emails", Counter({k: len(v) for k, v in message_ids.items()}))
        self.resent_emails = copies
        self.webhooks()

    def webhooks(self) -> None:
        endpoints = [e for e in self.world.endpoints if e["is_active"]]
        deliveries = {(str(d["event_id"]), int(d["endpoint_id"])): d for d in self.world.deliveries}
        logged: set[tuple[str, str]] = set()
        for line in self.world.webhook_log:
            headers = line.get("headers") or {}
            logged.add(
                (str(headers.get("turnstile-event-id")), str(headers.get("turnstile-delivery-id")))
            )
        for event in self.world.outbox:
            data = event["data"] or {}
            if event["type"] not in WEBHOOK_TYPES:
                continue
            organizer = str(data.get("organizer_id"))
            for endpoint in endpoints:
                wanted = endpoint["event_types"] or []
                if endpoint["organizer_id"] != organizer or (
                    wanted and event["type"] not in wanted
                ):
                    continue
                event_id = str(event["event_id"])
                delivery = deliveries.get((event_id, int(endpoint["id"])))
                what = f"{event['type']} {event_id} for webhook endpoint {endpoint['id']}"
                if delivery is None:
                    self.say(f"{what} has no delivery")
                elif delivery["status"] != "succeeded":
                    self.say(f"{what}: delivery {delivery['id']} is {delivery['status']}")
                elif (event_id, str(delivery["id"])) not in logged:
                    self.say(f"{what}: delivery {delivery['id']} never reached the receiver")

    # dead letters ------------------------------------------------------------------------

    def dead_letters(self) -> None:
        expected: dict[tuple[str, str], tuple[int, int]] = {}
        for poison in self.poison:
            for consumer in poison.get("consumers") or ():
                sure = poison.get("type") == "ok"
                expected[(str(poison["msg_id"]), consumer)] = (1 if sure else 0, 1)
        found: Counter[tuple[str, str]] = Counter()
        for letter in self.world.dead_letters:
            payload = str(letter["payload"])
            match = next(
                (m for (m, c) in expected if m in payload and c == letter["consumer"]), None
            )
            if match is None:
                error = str(letter["error"]).strip().splitlines()[-1:] or [""]
                self.say(
                    f"dead letter {letter['id']} ({letter['consumer']}, {letter['subject']}"
                    f" #{letter['stream_sequence']}): {error[0][:200]}"
                )
                continue
            found[(match, str(letter["consumer"]))] += 1
        for (msg_id, consumer), (low, high) in expected.items():
            count = found[(msg_id, consumer)]
            if not low <= count <= high:
                self.say(
                    f"poison {msg_id} has {count} dead letters from consumer {consumer}, not 1"
                )


def _stats(run: Run) -> dict[str, Any]:
    operations: dict[str, Counter[str]] = defaultdict(Counter)
    for op in run.ops:
        operations[op.f][op.type] += 1
    faults: Counter[str] = Counter()
    for entry in run.entries:
        if entry.get("process") == "nemesis":
            phase = (entry.get("value") or {}).get("phase")
            if phase in (None, "start"):
                faults[str(entry["f"])] += 1
    return {
        "operations": {f: dict(counts) for f, counts in operations.items()},
        "faults": dict(faults),
        "customers": len(run.customers),
        "organizers": len(run.organizers),
    }


def _poison_ops(run: Run, injected: Iterable[str] | None) -> list[dict[str, Any]]:
    found = [{**op.request, "type": op.type, **op.result} for op in run.ops if op.f == "poison"]
    if injected is None:
        return found
    wanted = set(injected)
    from devstack.chaos.workload import POISON_CONSUMERS

    known = {str(p["msg_id"]): p for p in found}
    return [
        known.get(msg_id, {"msg_id": msg_id, "consumers": list(POISON_CONSUMERS), "type": "ok"})
        for msg_id in sorted(wanted)
    ]


def check(
    topology: Topology,
    history_path: Path,
    *,
    heal_timeout: float = 120.0,
    injected_poison: Iterable[str] | None = None,
) -> Verdict:
    """Wait until the system has healed, then judge the run. `injected_poison`: the ids of
    the poison messages put on the bus on purpose (default: the history's `poison` ops)."""
    run = Run.read(load(history_path))
    stats = _stats(run)
    seconds, waiting = wait_healed(topology, run, timeout=heal_timeout)
    stats["time_to_heal"] = None if seconds is None else round(seconds, 1)
    violations = [f"not healed after {heal_timeout:.0f} s: {reason}" for reason in waiting]
    try:
        world = World.read(topology, run)
    except psycopg.Error as exc:
        return Verdict([*violations, f"the databases could not be read: {exc}"], stats)
    checker = Checker(run, world, _poison_ops(run, injected_poison))
    violations += checker.verify()
    stats.update(
        bookings=len(checker.run_bookings),
        payments=len(checker.run_payments),
        notifications=len(world.notifications),
        emails=len(world.emails),
        resent_emails=getattr(checker, "resent_emails", 0),
        webhook_deliveries=len(world.deliveries),
        webhook_requests=len(world.webhook_log),
        dead_letters=len(world.dead_letters),
    )
    return Verdict(violations, stats)
