"""The clients of a chaos run: customers and organizers doing what they can, over HTTP.

`Workload(topology, history, seed=...)`: `setup()` before the faults (organizers, their
events, resources and webhook endpoints; customers registered and logged in; one poison
message on the bus), `start()` (a thread per client, each with its own seeded
`random.Random`), `stop()` (no new request; one in flight ends at its timeout).

Every request is an operation in the history: `invoke` before it is sent, then

- `ok`: the server acknowledged an outcome: a 2xx, or one of the two 4xx answers that report
  a payment made (402 `payment-failed`: the payment exists, `failed`; 409 `hold-expired`
  with a `payment`: charged, then refunded);
- `fail`: nothing happened: any other 4xx problem, or no connection made (refused, connect
  timeout), so not a byte of the request was sent;
- `info`: unknown: a timeout, a dropped connection, a 5xx (503 included).

POSTs of bookings and payments carry an `Idempotency-Key`. After an unknown outcome (or 409
`idempotency-key-in-use`, or no connection) the same request with the same key and body is
sent again, a few times with backoff, each try its own operation with the same `key`.
Customers never list their bookings: a booking id reaches a client only in an answer about
its own key, which the checker relies on (a booking no key's record names was made by a
lost answer).

Invoke values hold `user` (the caller's id), `path` and `body`; completions hold `status`,
the answer's `body` and `replayed` (`Idempotent-Replayed`), or `error`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from devstack.chaos.history import History
from devstack.chaos.topology import Topology

REQUEST_TIMEOUT = 5.0
KEYED_TRIES = 5
# What a customer pays with, and how often.
PAYMENT_TOKENS = ("tok_visa", "tok_chargeDeclined", "tok_processingError", "tok_chargeThenTimeout")
PAYMENT_WEIGHTS = (60, 12, 10, 18)
# The poison goes to a subject both the notifications and the webhooks consumer read.
POISON_TYPE = "booking.created"
POISON_CONSUMERS = ("notifications", "webhooks")
SLOT_OPENING_HOUR, SLOT_CLOSING_HOUR = 8, 20


class SetupError(RuntimeError):
    """The workload could not prepare its clients (before any fault: a real failure)."""


@dataclass
class Outcome:
    type: str  # ok | fail | info
    status: int | None = None
    body: Any = None
    problem: str = ""  # the problem code of a 4xx

    @property
    def worth_retrying(self) -> bool:
        """The key's outcome is still unknown (or nothing was sent): send it again."""
        return (
            self.type == "info" or self.status is None or self.problem == "idempotency-key-in-use"
        )


def classify(status: int, body: Any) -> Outcome:
    problem = ""
    if isinstance(body, dict) and status >= 400:
        problem = str(body.get("code") or body.get("type") or "").rsplit(":", 1)[-1]
    if 200 <= status < 300:
        return Outcome("ok", status, body)
    if status >= 500:
        return Outcome("info", status, body, problem)
    reports_payment = isinstance(body, dict) and isinstance(body.get("payment"), dict)
    if status == 402 or (status == 409 and problem == "hold-expired" and reports_payment):
        return Outcome("ok", status, body, problem)
    return Outcome("fail", status, body, problem)


@dataclass
class Catalog:
    """What the organizers offer, shared by every client."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    events: dict[int, dict[str, Any]] = field(default_factory=dict)
    resources: dict[int, dict[str, Any]] = field(default_factory=dict)

    def active_events(self) -> list[int]:
        with self.lock:
            return sorted(i for i, e in self.events.items() if e["status"] == "active")


class Client:
    """One user: a session with the users service and a thread of requests."""

    role = "customer"

    def __init__(self, workload: Workload, name: str, rng: random.Random) -> None:
        self.workload = workload
        self.name = name
        self.rng = rng
        self.http = httpx.Client(timeout=REQUEST_TIMEOUT)
        nonce = workload.nonce
        self.email = f"{name}-{nonce}@chaos.test"
        self.password = f"Chaos-{secrets.token_hex(6)}-Run{rng.randrange(10, 99)}"
        self.user_id = ""
        self.access = ""
        self.refresh = ""
        self.access_until = 0.0

    # -- HTTP ---------------------------------------------------------------------------

    def call(
        self,
        f: str,
        method: str,
        url: str,
        *,
        body: dict[str, Any] | None = None,
        key: str | None = None,
        extra: dict[str, Any] | None = None,
        auth: bool = True,
    ) -> Outcome:
        """Send one request as one operation of the history."""
        path = httpx.URL(url).path
        value: dict[str, Any] = {"user": self.user_id or None, "path": path, **(extra or {})}
        if body is not None:
            value["body"] = body
        headers = {"Accept": "application/json"}
        if auth and self.access:
            headers["Authorization"] = f"Bearer {self.access}"
        if key is not None:
            headers["Idempotency-Key"] = key
        history = self.workload.history
        op = history.invoke(self.name, f, value, key=key)
        try:
            response = self.http.request(method, url, json=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            history.complete(op, "fail", {"error": f"{type(exc).__name__}: {exc}"})
            return Outcome("fail")
        except httpx.HTTPError as exc:
            history.complete(op, "info", {"error": f"{type(exc).__name__}: {exc}"})
            return Outcome("info")
        try:
            answer: Any = response.json() if response.content else None
        except ValueError:
            answer = response.text[:500]
        outcome = classify(response.status_code, answer)
        completion = {
            "status": response.status_code,
            "body": answer,
            "replayed": response.headers.get("Idempotent-Replayed") == "true",
        }
        if response.status_code >= 400:
            completion["content_type"] = response.headers.get("Content-Type")
            completion["retry_after"] = response.headers.get("Retry-After")
        history.complete(op, outcome.type, completion)
        if response.status_code == 401 and auth:
            self.access_until = 0.0  # refresh before the next request
        if response.status_code == 429:
            self.pause(float(response.headers.get("Retry-After") or 1))
        return outcome

    def keyed_post(self, f: str, path: str, body: dict[str, Any], extra: dict[str, Any]) -> Outcome:
        """POST with an Idempotency-Key, sent again with the same key and body while its
        outcome is unknown (or the server could not be reached)."""
        key = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        outcome = Outcome("info")
        for attempt in range(KEYED_TRIES):
            if attempt and not self.authenticated():
                continue
            outcome = self.call(
                f, "POST", self.booking_url() + path, body=body, key=key, extra=extra
            )
            if not outcome.worth_retrying and outcome.status != 401:
                return outcome
            if not self.pause(0.4 * 2**attempt * self.rng.uniform(0.8, 1.4)):
                break
        return outcome

    def booking_url(self) -> str:
        return self.rng.choice(self.workload.topology.booking_urls)

    def pause(self, seconds: float) -> bool:
        """Sleep unless the run stops meanwhile; False once it has."""
        return not self.workload.stopping.wait(max(0.0, seconds))

    # -- session ------------------------------------------------------------------------

    def register(self) -> None:
        users = self.workload.topology.users_url
        body = {"name": self.name, "email": self.email, "password": self.password}
        if self.role != "customer":
            body["role"] = self.role
        for _ in range(5):
            outcome = self.call(
                "register", "POST", f"{users}/api/users/register", body=body, auth=False
            )
            if outcome.type == "ok":
                self.user_id = str(outcome.body["id"])
                break
            if outcome.status == 400:  # taken by an earlier try whose answer was lost
                break
            time.sleep(0.5)
        if not self.login():
            raise SetupError(f"{self.name} could not log in")

    def login(self) -> bool:
        users = self.workload.topology.users_url
        outcome = self.call(
            "login",
            "POST",
            f"{users}/api/users/login",
            body={"email": self.email, "password": self.password},
            auth=False,
        )
        return self._take_tokens(outcome)

    def _take_tokens(self, outcome: Outcome) -> bool:
        if outcome.type != "ok" or not isinstance(outcome.body, dict):
            return False
        self.access = outcome.body["access"]
        self.refresh = outcome.body["refresh"]
        self.access_until = time.monotonic() + float(outcome.body.get("expires_in", 300)) - 30
        self.user_id = str(outcome.body["user"]["id"])
        return True

    def authenticated(self) -> bool:
        """A valid access token: refreshed when it is about to expire or was refused, a new
        login when the refresh is refused. False when the users service cannot say."""
        if self.access and time.monotonic() < self.access_until:
            return True
        users = self.workload.topology.users_url
        outcome = self.call(
            "refresh",
            "POST",
            f"{users}/api/users/token/refresh",
            body={"refresh": self.refresh},
            auth=False,
        )
        if self._take_tokens(outcome):
            return True
        if outcome.type == "fail" and outcome.status is not None and self.login():
            return True
        self.pause(self.rng.uniform(0.5, 1.5))
        return False

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        try:
            while not self.workload.stopping.is_set():
                if self.authenticated():
                    self.step()
                self.pause(self.rng.uniform(0.05, 0.4))
        finally:
            self.http.close()

    def step(self) -> None:
        raise NotImplementedError


class Customer(Client):
    def __init__(self, workload: Workload, name: str, rng: random.Random) -> None:
        super().__init__(workload, name, rng)
        self.bookings: dict[int, dict[str, Any]] = {}  # id -> last answer about it
        self.payments: dict[int, dict[str, Any]] = {}

    def _remember(self, booking: Any) -> None:
        if isinstance(booking, dict) and "id" in booking and "status" in booking:
            self.bookings[int(booking["id"])] = booking

    def _live(self, status: str) -> list[int]:
        now = dt.datetime.now(dt.UTC).isoformat()
        return sorted(
            i
            for i, b in self.bookings.items()
            if b["status"] == status and (status != "pending" or str(b["expires_at"]) > now)
        )

    def step(self) -> None:
        pending, confirmed = self._live("pending"), self._live("confirmed")
        choice = self.rng.random()
        if choice < 0.32 or (len(pending) + len(confirmed) == 0 and choice < 0.8):
            self.book_tickets()
        elif choice < 0.42:
            self.book_slot()
        elif choice < 0.68 and pending:
            self.pay(self.rng.choice(pending))
        elif choice < 0.76 and pending:
            self.change(self.rng.choice(pending))
        elif choice < 0.86 and (pending or confirmed):
            self.cancel(self.rng.choice(pending + confirmed))
        elif choice < 0.93 and self.payments:
            self.read_payment(self.rng.choice(sorted(self.payments)))
        elif self.bookings:
            self.read_booking(self.rng.choice(sorted(self.bookings)))
        # otherwise: idle, and holds run out

    def book_tickets(self) -> None:
        events = self.workload.catalog.active_events()
        if not events:
            return
        body = {"event": self.rng.choice(events), "tickets_booked": self.rng.randint(1, 3)}
        outcome = self.keyed_post("book", "/api/bookings/", body, {})
        self._remember(outcome.body if outcome.type == "ok" else None)
        if outcome.problem == "event-canceled":
            self.workload.event_gone(int(body["event"]))

    def book_slot(self) -> None:
        with self.workload.catalog.lock:
            resources = sorted(self.workload.catalog.resources)
        if not resources:
            return
        day = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=self.rng.randint(1, 2))
        hours = self.rng.choice((1, 1, 1, 2))
        hour = self.rng.randrange(SLOT_OPENING_HOUR, SLOT_CLOSING_HOUR - hours + 1)
        start = dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)
        body = {
            "resource": self.rng.choice(resources),
            "start_time": start.isoformat().replace("+00:00", "Z"),
            "end_time": (start + dt.timedelta(hours=hours)).isoformat().replace("+00:00", "Z"),
        }
        outcome = self.keyed_post("book", "/api/bookings/", body, {})
        self._remember(outcome.body if outcome.type == "ok" else None)

    def pay(self, booking_id: int) -> None:
        token = self.rng.choices(PAYMENT_TOKENS, PAYMENT_WEIGHTS)[0]
        body = {"booking": booking_id, "payment_token": token}
        outcome = self.keyed_post("pay", "/api/payments/", body, {"booking": booking_id})
        answer: dict[str, Any] = outcome.body if isinstance(outcome.body, dict) else {}
        payment: dict[str, Any] = answer.get("payment") or answer
        if outcome.type == "ok" and "id" in payment:
            self.payments[int(payment["id"])] = payment
            if payment.get("status") == "success":
                self.bookings[booking_id]["status"] = "confirmed"
        if outcome.problem in ("booking-canceled", "hold-expired"):
            self.bookings[booking_id]["status"] = "canceled"

    def change(self, booking_id: int) -> None:
        if self.bookings[booking_id].get("kind") != "tickets":
            return
        method = self.rng.choice(("PUT", "PATCH"))
        body = {"tickets_booked": self.rng.randint(1, 4)}
        outcome = self.call(
            "change",
            method,
            f"{self.booking_url()}/api/bookings/{booking_id}/",
            body=body,
            extra={"booking": booking_id},
        )
        self._remember(outcome.body if outcome.type == "ok" else None)

    def cancel(self, booking_id: int) -> None:
        outcome = self.call(
            "cancel",
            "DELETE",
            f"{self.booking_url()}/api/bookings/{booking_id}/",
            extra={"booking": booking_id},
        )
        self._remember(outcome.body if outcome.type == "ok" else None)

    def read_booking(self, booking_id: int) -> None:
        outcome = self.call(
            "read-booking",
            "GET",
            f"{self.booking_url()}/api/bookings/{booking_id}/",
            extra={"booking": booking_id},
        )
        self._remember(outcome.body if outcome.type == "ok" else None)

    def read_payment(self, payment_id: int) -> None:
        outcome = self.call(
            "read-payment",
            "GET",
            f"{self.booking_url()}/api/payments/{payment_id}/",
            extra={"payment": payment_id},
        )
        if outcome.type == "ok" and isinstance(outcome.body, dict):
            self.payments[payment_id] = outcome.body


class Organizer(Client):
    role = "organizer"
    MAX_CANCELED_EVENTS = 1

    def __init__(self, workload: Workload, name: str, rng: random.Random) -> None:
        super().__init__(workload, name, rng)
        self.created = 0
        self.canceled = 0

    def own_events(self) -> list[int]:
        catalog = self.workload.catalog
        with catalog.lock:
            return sorted(
                i
                for i, e in catalog.events.items()
                if e["organizer"] == self.name and e["status"] == "active"
            )

    def step(self) -> None:
        events = self.own_events()
        choice = self.rng.random()
        if len(events) < 2 or choice < 0.08:
            self.create_event()
        elif choice < 0.40:
            self.patch_event(
                self.rng.choice(events), {"description": f"news {secrets.token_hex(3)}"}
            )
        elif choice < 0.94:
            event_id = self.rng.choice(events)
            with self.workload.catalog.lock:
                total = int(self.workload.catalog.events[event_id]["total_tickets"])
            change = self.rng.choice((-3, -2, -1, 1, 2, 3, 4, 5))
            self.patch_event(event_id, {"total_tickets": max(1, total + change)})
        elif self.canceled < self.MAX_CANCELED_EVENTS and len(events) > 2:
            self.cancel_event(self.rng.choice(events))
        if not self.pause(self.rng.uniform(0.5, 2.0)):
            return

    def create_event(self) -> None:
        self.created += 1
        date = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30 + self.rng.randint(0, 30))
        body = {
            "name": f"{self.name} show {self.created} {self.workload.nonce}",
            "description": "chaos",
            "date": date.isoformat(),
            "time": "20:00",
            "location": "Hall",
            "total_tickets": self.rng.randint(12, 30),
            "price_per_ticket": f"{self.rng.randint(5, 60)}.00",
        }
        outcome = self.call("create-event", "POST", f"{self.booking_url()}/api/events/", body=body)
        if outcome.type == "ok":
            event = outcome.body
            with self.workload.catalog.lock:
                self.workload.catalog.events[int(event["id"])] = {
                    "organizer": self.name,
                    "status": "active",
                    "total_tickets": event["total_tickets"],
                }

    def patch_event(self, event_id: int, body: dict[str, Any]) -> None:
        outcome = self.call(
            "update-event",
            "PATCH",
            f"{self.booking_url()}/api/events/{event_id}/",
            body=body,
            extra={"event": event_id},
        )
        if outcome.type == "ok":
            with self.workload.catalog.lock:
                self.workload.catalog.events[event_id]["total_tickets"] = outcome.body[
                    "total_tickets"
                ]

    def cancel_event(self, event_id: int) -> None:
        self.canceled += 1
        outcome = self.call(
            "cancel-event",
            "DELETE",
            f"{self.booking_url()}/api/events/{event_id}/",
            extra={"event": event_id},
        )
        if outcome.type != "fail":
            self.workload.event_gone(event_id)

    def create_resource(self) -> None:
        body = {
            "name": f"{self.name} court {self.workload.nonce}",
            "timezone": "UTC",
            "opening_time": f"{SLOT_OPENING_HOUR:02d}:00",
            "closing_time": f"{SLOT_CLOSING_HOUR:02d}:00",
            "slot_minutes": 60,
            "price_per_slot": "20.00",
        }
        outcome = self.call(
            "create-resource", "POST", f"{self.booking_url()}/api/resources/", body=body
        )
        if outcome.type != "ok":
            raise SetupError(f"{self.name} could not create a resource: {outcome}")
        with self.workload.catalog.lock:
            self.workload.catalog.resources[int(outcome.body["id"])] = {"organizer": self.name}

    def register_webhook(self) -> None:
        topology = self.workload.topology
        body = {"url": topology.webhook_url, "description": f"{self.name} chaos receiver"}
        outcome = self.call(
            "create-webhook", "POST", f"{topology.notifications_url}/api/webhooks/", body=body
        )
        if outcome.type != "ok":
            raise SetupError(f"{self.name} could not register a webhook: {outcome}")


def _child_rng(master: random.Random) -> random.Random:
    return random.Random(master.getrandbits(64))  # noqa: S311


class Workload:
    def __init__(
        self,
        topology: Topology,
        history: History,
        *,
        seed: int,
        customers: int = 16,
        organizers: int = 2,
        events_per_organizer: int = 3,
    ) -> None:
        self.topology = topology
        self.history = history
        self.seed = seed
        self.nonce = f"{seed}-{secrets.token_hex(3)}"
        self.stopping = threading.Event()
        self.catalog = Catalog()
        self.events_per_organizer = events_per_organizer
        # Replayable choices, not secrets.
        master = random.Random(seed)  # noqa: S311
        self.organizers = [Organizer(self, f"o{n}", _child_rng(master)) for n in range(organizers)]
        self.customers = [Customer(self, f"c{n}", _child_rng(master)) for n in range(customers)]
        self.poison_rng = _child_rng(master)
        self._threads: list[threading.Thread] = []

    @property
    def clients(self) -> list[Client]:
        return [*self.organizers, *self.customers]

    def setup(self) -> None:
        """Before any fault: organizers with events, resources and webhook endpoints;
        customers registered and logged in; the poison on the bus."""
        # Each registration and login hashes a password (Argon2id): a few at a time.
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda client: client.register(), self.clients))
        for organizer in self.organizers:
            organizer.register_webhook()
            organizer.create_resource()
            for _ in range(self.events_per_organizer):
                organizer.create_event()
        if len(self.catalog.active_events()) < len(self.organizers):
            raise SetupError("the organizers could not create their events")
        self.inject_poison()

    def inject_poison(self) -> None:
        """Publish one message that is not an envelope to a subject the notifications
        consumer reads; the checker expects it dead-lettered by each consumer reading it."""
        settings = self.topology.settings
        prefix = settings.get("NATS_SUBJECT_PREFIX", "turnstile")
        marker = str(uuid.UUID(int=self.poison_rng.getrandbits(128), version=4))
        subject = f"{prefix}.{POISON_TYPE}"
        payload = json.dumps({"id": f"poison-{marker}", "type": POISON_TYPE, "data": "nope"})
        op = self.history.invoke(
            "poison",
            "poison",
            {"subject": subject, "msg_id": marker, "consumers": list(POISON_CONSUMERS)},
        )
        try:
            ack = asyncio.run(self._publish(subject, payload.encode(), marker))
        except (OSError, ConnectionError) as exc:
            self.history.complete(op, "fail", {"error": repr(exc)})
            raise SetupError(f"could not publish the poison: {exc!r}") from exc
        except Exception as exc:
            self.history.complete(op, "info", {"error": repr(exc)})
            raise SetupError(f"could not publish the poison: {exc!r}") from exc
        self.history.complete(op, "ok", {"stream": ack.stream, "sequence": ack.seq})

    async def _publish(self, subject: str, payload: bytes, msg_id: str) -> Any:
        import nats

        client = await nats.connect(servers=list(self.topology.nats_urls), connect_timeout=3)
        try:
            return await client.jetstream().publish(
                subject, payload, timeout=REQUEST_TIMEOUT, headers={"Nats-Msg-Id": msg_id}
            )
        finally:
            await client.close()

    def event_gone(self, event_id: int) -> None:
        with self.catalog.lock:
            if event_id in self.catalog.events:
                self.catalog.events[event_id]["status"] = "canceled"

    def start(self) -> None:
        self.stopping.clear()
        self._threads = [
            threading.Thread(target=client.run, name=f"chaos-{client.name}", daemon=True)
            for client in self.clients
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = REQUEST_TIMEOUT * 2 + 5) -> None:
        """No new request from now on; those in flight end (as `info` at worst) first."""
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
