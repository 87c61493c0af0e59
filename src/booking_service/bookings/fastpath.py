"""The flash-sale path for `POST /api/bookings/` with `{"event": id, "tickets_booked": n}`.

In an on-sale, thousands of buyers want the same inventory row. Taken one by one, every
booking holds that row's lock through its own commit and fsync, so the row admits one
booking per fsync whatever the hardware. Here, concurrent requests for the same event in
one process share one transaction: the first request to arrive leads, takes the row lock
(`SELECT ... FOR UPDATE`), grants tickets first come first served, writes every booking and
outbox event of the batch, and commits once; the requests that arrived meanwhile form the
next batch. Nothing waits on purpose: a batch is whatever queued during the previous one.

The guarantees are the regular path's: the inventory row is locked and the database's
`CHECK (available_tickets >= 0)` still refuses an oversell; a 201 is sent only after the
commit; the booking and its `booking.created` event commit together.

Sold out is remembered for `BOOKING_SOLDOUT_CACHE_SECONDS` (and never past the expiry of
the first pending hold), so the sold-out stampede that follows an on-sale is answered
without touching the database; tickets released by a cancelation show up at most that much
later, as if that buyer had come a moment later.

Anything else goes to the regular view, which explains it: an `Idempotency-Key`, other or
malformed fields, a missing or bad token, an unknown, canceled or past event, a refusal
while expired holds wait to be released.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from rest_framework.fields import DateTimeField

from booking_service.bookings.events import BOOKING_CREATED, booking_data
from booking_service.bookings.models import Booking, BookingKind, BookingStatus
from booking_service.bookings.services.common import hold_expires_at
from booking_service.events.models import Event, EventStatus
from servicekit.auth import InvalidTokenError, get_verifier
from servicekit.outbox.models import OutboxEvent
from servicekit.outbox.services import NOTIFY_CHANNEL
from servicekit.problems import PROBLEM_CONTENT_TYPE, problem_body

logger = logging.getLogger(__name__)

BOOKING_PATHS = frozenset(
    {"/api/bookings", "/api/bookings/", "/api/bookings/create", "/api/bookings/create/"}
)
MAX_ID = 2**63 - 1

_BOOKINGS = Booking._meta.db_table
_EVENTS = Event._meta.db_table
_OUTBOX = OutboxEvent._meta.db_table

_NEW_IDS_SQL = (
    f"SELECT nextval(pg_get_serial_sequence('{_BOOKINGS}', 'id')) "  # noqa: S608
    "FROM generate_series(1, %s)"
)

# The inventory row is locked for two short statements and the commit: lock and read the
# event, then (after the grants are decided) take the tickets and write the bookings, their
# `booking.created` events and the relay's NOTIFY in one statement. The UPDATE is itself
# conditional and every INSERT depends on it, so even a wrong decision could not oversell.
_LOCK_SQL = f"""
    SELECT available_tickets, status, (date + time) > (clock_timestamp() AT TIME ZONE 'UTC'),
           organizer_id, name, price_per_ticket, currency
    FROM {_EVENTS} WHERE id = %s FOR UPDATE
"""  # noqa: S608 (table names come from the models)

# Read after the lock (and after this batch's own writes), in a statement of its own so its
# snapshot is fresh: when the first pending hold of the event expires, and the time now.
_EARLIEST_EXPIRY_SQL = f"""
    SELECT clock_timestamp(), min(expires_at) FROM {_BOOKINGS}
    WHERE event_id = %s AND status = 'pending'
"""  # noqa: S608 (table names come from the models)

_WRITE_SQL = f"""
WITH taken AS (
    UPDATE {_EVENTS} SET available_tickets = available_tickets - %(total)s
    WHERE id = %(event_id)s AND available_tickets >= %(total)s
    RETURNING id
),
booked AS (
    INSERT INTO {_BOOKINGS} (id, user_id, kind, event_id, tickets_booked, status, cancel_reason,
                             expires_at, amount, currency, created_at, updated_at)
    SELECT a.id, a.user_id, 'tickets', taken.id, a.tickets, 'pending', '', %(expires_at)s,
           a.amount, %(currency)s, %(now)s, %(now)s
    FROM unnest(%(ids)s::bigint[], %(users)s::uuid[], %(tickets)s::int[],
                %(amounts)s::numeric[]) AS a(id, user_id, tickets, amount), taken
    RETURNING 1
),
published AS (
    INSERT INTO {_OUTBOX} (event_id, type, producer, version, occurred_at, data, attempts,
                           last_error)
    SELECT o.event_id, %(event_type)s, %(producer)s, 1, %(now)s, o.data, 0, ''
    FROM unnest(%(event_ids)s::uuid[], %(datas)s::jsonb[]) AS o(event_id, data), taken
    RETURNING 1
),
notified AS (SELECT pg_notify(%(channel)s, '') FROM taken)
SELECT (SELECT count(*) FROM booked), (SELECT count(*) FROM published),
       (SELECT count(*) FROM notified)
"""  # noqa: S608 (table names come from the models)


@dataclass
class SoldOut:
    available: int


@dataclass(eq=False)  # compared by identity
class _Ask:
    tickets: int
    user_id: uuid.UUID
    wake: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    done: bool = False
    # A Booking, SoldOut, None (let the regular view decide) or an exception.
    result: Any = None


@dataclass
class _Queue:
    running: bool = False
    waiting: list[_Ask] = field(default_factory=list)


class TicketBatcher:
    """Per-process batching of ticket holds, one queue per event."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._queues: dict[int, _Queue] = {}
        self._sold_out_until: dict[int, float] = {}
        self._clock = clock

    def book(self, *, event_id: int, tickets: int, user_id: uuid.UUID) -> Any:
        until = self._sold_out_until.get(event_id)
        if until is not None:
            if until > self._clock():
                return SoldOut(available=0)
            self._sold_out_until.pop(event_id, None)
        ask = _Ask(tickets=tickets, user_id=user_id)
        with self._lock:
            queue = self._queues.setdefault(event_id, _Queue())
            queue.waiting.append(ask)
            if not queue.running:
                queue.running = ask.lead = True
        while not ask.lead:
            ask.wake.wait()
            ask.wake.clear()
            if ask.done:
                return ask.result
        self._lead(event_id, queue)
        return ask.result

    def _lead(self, event_id: int, queue: _Queue) -> None:
        with self._lock:
            batch, queue.waiting = queue.waiting, []
        try:
            self._run(event_id, batch)
        except Exception as exc:
            logger.exception("batched booking of event %s failed", event_id)
            for ask in batch:
                ask.result = exc
        finally:
            successor: _Ask | None = None
            with self._lock:
                if queue.waiting:
                    successor = queue.waiting[0]
                    successor.lead = True
                else:
                    queue.running = False
                    if self._queues.get(event_id) is queue:
                        del self._queues[event_id]
            for ask in batch:
                ask.done = True
                ask.wake.set()
            if successor is not None:
                successor.wake.set()

    def _run(self, event_id: int, batch: list[_Ask]) -> None:
        with connection.cursor() as cursor:
            cursor.execute(_NEW_IDS_SQL, [len(batch)])
            ids = [row[0] for row in cursor.fetchall()]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_LOCK_SQL, [event_id])
            row = cursor.fetchone()
            if row is None:
                return  # unknown event: the regular view answers 404
            available, status, upcoming, organizer_id, name, price, currency = row
            if status != EventStatus.ACTIVE or not upcoming:
                return  # canceled or started: the regular view explains
            granted: list[tuple[int, _Ask]] = []
            refused: list[_Ask] = []
            left = available
            for booking_id, ask in zip(ids, batch, strict=True):
                if ask.tickets <= left:
                    granted.append((booking_id, ask))
                    left -= ask.tickets
                else:
                    refused.append(ask)
            if granted:
                self._write(event_id, granted, timezone.now(), organizer_id, name, price, currency)
            if not refused and left > 0:
                return
            cursor.execute(_EARLIEST_EXPIRY_SQL, [event_id])
            now, earliest = cursor.fetchone() or (timezone.now(), None)
        # Refused while expired holds wait for release: the regular view releases them and
        # tries again. Otherwise the tickets are really gone.
        expired = earliest is not None and earliest <= now
        for ask in refused:
            ask.result = None if expired else SoldOut(available=left)
        if left == 0 and not expired:
            # Remembered no longer than the cache time, nor past the moment the first
            # pending hold (this batch's included) expires and its tickets come back.
            ttl = float(settings.BOOKING_SOLDOUT_CACHE_SECONDS)
            if earliest is not None:
                ttl = min(ttl, (earliest - now).total_seconds())
            self._sold_out_until[event_id] = self._clock() + ttl

    @staticmethod
    def _write(
        event_id: int,
        granted: list[tuple[int, _Ask]],
        now: dt.datetime,
        organizer_id: uuid.UUID,
        name: str,
        price: Decimal,
        currency: str,
    ) -> None:
        expires_at = hold_expires_at(now)
        bookings = [
            Booking(
                id=booking_id,
                user_id=ask.user_id,
                kind=BookingKind.TICKETS,
                event_id=event_id,
                tickets_booked=ask.tickets,
                status=BookingStatus.PENDING,
                cancel_reason="",
                expires_at=expires_at,
                amount=price * ask.tickets,
                currency=currency,
                created_at=now,
                updated_at=now,
            )
            for booking_id, ask in granted
        ]
        event = Event(id=event_id, organizer_id=organizer_id, name=name)
        datas = []
        for booking in bookings:
            booking.event = event
            datas.append(orjson.dumps(booking_data(booking)).decode())
        with connection.cursor() as cursor:
            cursor.execute(
                _WRITE_SQL,
                {
                    "event_id": event_id,
                    "total": sum(ask.tickets for _, ask in granted),
                    "ids": [b.pk for b in bookings],
                    "users": [b.user_id for b in bookings],
                    "tickets": [b.tickets_booked for b in bookings],
                    "amounts": [b.amount for b in bookings],
                    "currency": currency,
                    "now": now,
                    "expires_at": expires_at,
                    "event_ids": [uuid.uuid4() for _ in bookings],
                    "datas": datas,
                    "event_type": BOOKING_CREATED,
                    "producer": settings.SERVICE_NAME,
                    "channel": NOTIFY_CHANNEL,
                },
            )
            written = cursor.fetchone()
        if written is None or written[0] != len(bookings) or written[1] != len(bookings):
            # The locked row disagreed with its own UPDATE: roll back, answer 503.
            raise RuntimeError(f"batched booking of event {event_id} wrote {written}")
        for (_, ask), booking in zip(granted, bookings, strict=True):
            ask.result = booking


_datetime = DateTimeField()


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else str(_datetime.to_representation(value))


def booking_representation(booking: Booking) -> dict[str, Any]:
    """What `BookingOutputSerializer` gives for a new ticket hold (a test holds them equal)."""
    return {
        "id": booking.pk,
        "kind": booking.kind,
        "user_id": str(booking.user_id),
        "event": booking.event_id,
        "tickets_booked": booking.tickets_booked,
        "resource": booking.resource_id,
        "start_time": _iso(booking.start_time),
        "end_time": _iso(booking.end_time),
        "status": booking.status,
        "cancel_reason": booking.cancel_reason,
        "expires_at": _iso(booking.expires_at),
        "amount": f"{booking.amount:.2f}",
        "currency": booking.currency,
        "created_at": _iso(booking.created_at),
        "updated_at": _iso(booking.updated_at),
        "confirmed_at": _iso(booking.confirmed_at),
        "canceled_at": _iso(booking.canceled_at),
    }


def _json(status: int, body: Any, content_type: str = "application/json") -> HttpResponse:
    return HttpResponse(orjson.dumps(body), status=status, content_type=content_type)


class FastBookingMiddleware:
    """Right after SecurityMiddleware (which still adds its headers to these responses);
    see the module docstring."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        if not settings.BOOKING_FAST_PATH:
            raise MiddlewareNotUsed
        self.get_response = get_response
        self.batcher = TicketBatcher()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path_info in BOOKING_PATHS:
            response = self._fast(request)
            if response is not None:
                return response
        return self.get_response(request)

    def _fast(self, request: HttpRequest) -> HttpResponse | None:
        meta = request.META
        if "HTTP_IDEMPOTENCY_KEY" in meta or request.content_type != "application/json":
            return None
        authorization = meta.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            body = orjson.loads(request.body)
        except (orjson.JSONDecodeError, ValueError):
            return None
        if type(body) is not dict or body.keys() != {"event", "tickets_booked"}:
            return None
        event_id, tickets = body["event"], body["tickets_booked"]
        if type(event_id) is not int or type(tickets) is not int:
            return None
        if not (1 <= event_id <= MAX_ID and 1 <= tickets <= settings.BOOKING_MAX_TICKETS):
            return None
        try:
            principal = get_verifier().verify(token.strip())
            user_id = uuid.UUID(principal.id)
        except (InvalidTokenError, ValueError):
            return None
        try:
            result = self.batcher.book(event_id=event_id, tickets=tickets, user_id=user_id)
        except DatabaseError:
            result = DatabaseError()
        if result is None:
            return None
        if isinstance(result, SoldOut):
            body = problem_body(
                409,
                detail=f"Not enough tickets left: {result.available} available, {tickets} asked.",
                code="sold-out",
                extra={"available_tickets": result.available},
            )
            return _json(409, body, PROBLEM_CONTENT_TYPE)
        if isinstance(result, Exception):
            body = problem_body(503, detail="The service is busy; retry shortly.", code="busy")
            response = _json(503, body, PROBLEM_CONTENT_TYPE)
            response["Retry-After"] = "1"
            return response
        return _json(201, booking_representation(result))
