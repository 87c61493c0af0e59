"""The flash-sale path for `POST /api/bookings/` with `{"event": id, "tickets_booked": n}`.

In an on-sale, thousands of buyers want the same inventory row. Taken one by one, every
booking holds that row's lock through its own commit and fsync, so the row admits one
booking per fsync whatever the hardware. Here, concurrent requests for the same event in
one process share one transaction: the first request to arrive leads and sends the whole
batch to the database in one round trip (lock the row, grant tickets first come first
served, write every booking and outbox event of the batch, commit once); the requests that
arrived meanwhile form the next batch. Nothing waits on purpose: a batch is whatever queued
during the previous one. The row lock is held only inside the database, never across a
round trip, so a busy or descheduled Python process cannot stretch it.

The guarantees are the regular path's: the inventory row is locked and the database's
`CHECK (available_tickets >= 0)` still refuses an oversell; a 201 is sent only after the
commit; the booking and its `booking.created` event commit together; a customer's pending
holds of one event stay within `BOOKING_MAX_HELD_TICKETS`, judged under the row lock
against the batch's earlier grants too, and refused with the regular view's problem.

The per-user and per-address rate limits (`RATE_LIMIT_BOOKING_PER_*`) are the regular
view's counters too: the leader counts every ask of its batch in one statement before the
batch statement (one more round trip per batch, not per request, and in its own
transaction, so the row lock is never held across it), in arrival order, and answers the
asks past a limit with the regular view's 429. An ask handed on to the regular view is not
counted again. Sold-out answers from memory cost nothing and are not counted.

Sold out is remembered for `BOOKING_SOLDOUT_CACHE_SECONDS` (and never past the expiry of
the first pending hold), so the sold-out stampede that follows an on-sale is answered
without touching the database; tickets released by a cancelation show up at most that much
later, as if that buyer had come a moment later.

Anything else goes to the regular view, which explains it: an `Idempotency-Key`, other or
malformed fields, a missing or bad token, an unknown, canceled or past event, a refusal
while expired holds wait to be released. The body is read and parsed by servicekit.parsers,
the regular view's parser, so a body over a limit (size, depth, numbers, text) is refused
here exactly when it is there, and the regular view gives the answer.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
import psycopg
from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.db import DatabaseError, ProgrammingError, connection
from django.db.backends.utils import CursorWrapper
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from psycopg import errors

from booking_service.bookings.models import Booking, BookingKind, BookingStatus
from booking_service.bookings.services.common import hold_expires_at
from booking_service.bookings.services.tickets import hold_limit_reached
from booking_service.events.models import Event
from servicekit import parsers
from servicekit.auth import InvalidTokenError, get_verifier
from servicekit.clients import client_address
from servicekit.messages import BookingCreated, encode_datetime
from servicekit.outbox.models import OutboxEvent
from servicekit.outbox.services import NOTIFY_CHANNEL
from servicekit.problems import PROBLEM_CONTENT_TYPE, Problem, problem_body
from servicekit.ratelimits import Limit, RateLimited, count, setting_name

logger = logging.getLogger(__name__)

BOOKING_PATHS = frozenset(
    {"/api/bookings", "/api/bookings/", "/api/bookings/create", "/api/bookings/create/"}
)
MAX_ID = parsers.INT64_MAX  # a bigint key
# Set on a request this path counted against the rate limits and then handed to the
# regular view, which must not count it again.
COUNTED_ATTRIBUTE = "booking_rate_limits_counted"
_LIMIT_USER = setting_name("booking", "user")
_LIMIT_ADDRESS = setting_name("booking", "address")

_BOOKINGS = Booking._meta.db_table
_EVENTS = Event._meta.db_table
_OUTBOX = OutboxEvent._meta.db_table

# Two statements sent together in autocommit (`_RUN_SQL`), which PostgreSQL runs as one
# transaction: the batch costs one round trip, and the inventory row is locked only inside
# the server, for the second statement and the commit. The row lock never waits on this
# process being scheduled, on the GIL or on the network.
#
# The first statement takes the row lock. The second one (whose snapshot is taken after the
# lock was granted, so it reads the row, the clock and the pending holds as they are now)
# walks the asks in arrival order in `decided`, granting each one the tickets it asks for
# while enough are left (first come, first served, as if they had come one by one), and
# numbers the granted bookings in `granted`. It also refuses an ask that would take its
# customer past BOOKING_MAX_HELD_TICKETS ($10): `held` sums each customer's pending holds of
# the event (one lookup of booking_event_user_pending_idx per customer of the batch) and
# `holding` carries them, plus what the batch granted them so far, along the walk; such an
# ask is `capped` when tickets were left for it. The UPDATE is itself conditional and every
# INSERT depends on it, so even a wrong decision could not oversell, and the CHECK
# (available_tickets >= 0) has the last word; an error in either statement rolls back
# both. The outbox rows carry `booking_message()`'s fields (a test holds them equal).
# (Taking the lock and updating in one statement does not work: an UPDATE skips a row that
# a FOR UPDATE of the same statement locked after a concurrent change.)
_BATCH_SQL = f"""
WITH RECURSIVE
ask AS (
    SELECT a.n, a.user_id, a.tickets
    FROM unnest($2, $3) WITH ORDINALITY AS a(user_id, tickets, n)
),
locked AS MATERIALIZED (
    SELECT id, available_tickets, status, (date + time) AS starts, organizer_id, name,
           price_per_ticket, currency
    FROM {_EVENTS} WHERE id = $1
),
held AS MATERIALIZED (
    SELECT user_id, sum(tickets_booked)::int AS tickets
    FROM {_BOOKINGS}
    WHERE event_id = $1 AND status = 'pending' AND user_id = ANY($2)
    GROUP BY user_id
),
clock AS MATERIALIZED (
    SELECT clock_timestamp() AS now,
           status = 'active' AND starts > (clock_timestamp() AT TIME ZONE 'UTC') AS open
    FROM locked
),
decided (n, left_after, granted, capped, held, holding) AS (
    SELECT 0::bigint, CASE WHEN clock.open THEN locked.available_tickets ELSE 0 END, false,
           false, 0, (SELECT coalesce(jsonb_object_agg(user_id, tickets), '{{}}') FROM held)
    FROM locked, clock
  UNION ALL
    SELECT a.n, CASE WHEN ok THEN d.left_after - a.tickets ELSE d.left_after END, ok,
           a.tickets <= d.left_after AND NOT ok, u.held,
           CASE WHEN ok THEN d.holding || jsonb_build_object(a.user_id, u.held + a.tickets)
                ELSE d.holding END
    FROM decided d JOIN ask a ON a.n = d.n + 1,
         LATERAL (SELECT coalesce((d.holding ->> a.user_id::text)::int, 0) AS held) u,
         LATERAL (SELECT a.tickets <= d.left_after AND u.held + a.tickets <= $10 AS ok) o
),
granted AS MATERIALIZED (
    SELECT a.n, a.user_id, a.tickets, nextval(pg_get_serial_sequence('{_BOOKINGS}', 'id')) AS id
    FROM ask a JOIN decided d USING (n)
    WHERE d.granted
),
taken AS (
    UPDATE {_EVENTS} e SET available_tickets = e.available_tickets - g.total
    FROM (SELECT sum(tickets) AS total FROM granted) g
    WHERE e.id = $1 AND g.total > 0 AND e.available_tickets >= g.total
    RETURNING e.id
),
booked AS (
    INSERT INTO {_BOOKINGS} (id, user_id, kind, event_id, tickets_booked, status, cancel_reason,
                             expires_at, amount, currency, created_at, updated_at)
    SELECT g.id, g.user_id, 'tickets', t.id, g.tickets, 'pending', '', $5,
           l.price_per_ticket * g.tickets, l.currency, $4, $4
    FROM granted g, taken t, locked l
    RETURNING 1
),
published AS (
    INSERT INTO {_OUTBOX} (event_id, type, producer, version, occurred_at, data, attempts,
                           last_error)
    SELECT gen_random_uuid(), $7, $8, 1, $4,
           jsonb_build_object(
               'booking_id', g.id, 'user_id', g.user_id::text,
               'organizer_id', l.organizer_id::text, 'kind', 'tickets', 'event_id', l.id,
               'event_name', l.name, 'resource_id', NULL, 'resource_name', NULL,
               'tickets_booked', g.tickets, 'start_time', NULL, 'end_time', NULL,
               'status', 'pending', 'expires_at', $6,
               'amount', (l.price_per_ticket * g.tickets)::text, 'currency', l.currency,
               'reason', NULL),
           0, ''
    FROM granted g, taken t, locked l
    RETURNING 1
),
notified AS (SELECT pg_notify($9, '') FROM taken)
SELECT clock.open, locked.price_per_ticket::numeric, locked.currency::text,
       (SELECT min(left_after) FROM decided),
       (SELECT coalesce(array_agg(n ORDER BY n), '{{}}') FROM granted),
       (SELECT coalesce(array_agg(id ORDER BY n), '{{}}') FROM granted),
       (SELECT count(*) FROM booked), (SELECT count(*) FROM published),
       (SELECT count(*) FROM notified),
       (SELECT coalesce(array_agg(n ORDER BY n), '{{}}') FROM decided WHERE capped),
       (SELECT coalesce(array_agg(held ORDER BY n), '{{}}') FROM decided WHERE capped),
       clock.now,
       CASE WHEN (SELECT count(*) FROM granted) < (SELECT count(*) FROM ask)
                 OR (SELECT min(left_after) FROM decided) = 0
            THEN (SELECT min(expires_at) FROM {_BOOKINGS}
                  WHERE event_id = $1 AND status = 'pending')
       END
FROM locked, clock
"""  # noqa: S608 (table names come from the models)

# The write statement is prepared once per connection, so the server does not plan it again
# while it holds the row lock; the lock statement and EXECUTE travel together.
_PREPARED = "turnstile_book_batch"
_PREPARE_SQL = (
    f"PREPARE {_PREPARED} (bigint, uuid[], int[], timestamptz, timestamptz, text, text, text, "
    f"text, int) AS {_BATCH_SQL}"
)
_RUN_SQL = (
    f"SELECT 1 FROM {_EVENTS} WHERE id = %(event_id)s FOR UPDATE; "  # noqa: S608
    f"EXECUTE {_PREPARED} (%(event_id)s, %(users)s, %(tickets)s, %(now)s, %(expires_at)s, "
    "%(expires_at_iso)s, %(event_type)s, %(producer)s, %(channel)s, %(hold_limit)s)"
)
_prepared_on: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()  # driver connections

# The row `_BATCH_SQL` answers: open, price, currency, tickets left, the granted asks'
# numbers and their booking ids, the rows booked, published and notified, the capped asks'
# numbers and what their customers held, the database's clock, the earliest pending expiry.
_BatchRow = tuple[
    bool,
    Decimal,
    str,
    int,
    list[int],
    list[int],
    int,
    int,
    int,
    list[int],
    list[int],
    dt.datetime,
    dt.datetime | None,
]


def _cursor() -> CursorWrapper:
    """A client-side-binding cursor (several statements in one `execute()`) on the request
    thread's connection, without Django's per-request health check (`CONN_HEALTH_CHECKS`),
    which would cost the batch another round trip. A connection that broke anyway fails its
    batch with a 503; `wrap_database_errors` marks it, and Django replaces it at the end of
    the request."""
    connection.ensure_connection()
    raw: Any = psycopg.ClientCursor(connection.connection)
    return (
        connection.make_debug_cursor(raw)
        if connection.queries_logged
        else connection.make_cursor(raw)
    )


def _prepare(cursor: CursorWrapper) -> None:
    try:
        cursor.execute(_PREPARE_SQL)
    except ProgrammingError as exc:
        # Already in the session (handed over by a pooler, say): replace it with this text.
        if not isinstance(exc.__cause__, errors.DuplicatePreparedStatement):
            raise
        cursor.execute(f"DEALLOCATE {_PREPARED}")
        cursor.execute(_PREPARE_SQL)


def _execute_batch(cursor: CursorWrapper, params: dict[str, Any]) -> _BatchRow | None:
    """Run the batch on the request's connection; the statement row (None: unknown event)."""
    raw = connection.connection
    for attempt in (1, 2):
        if raw not in _prepared_on:
            _prepare(cursor)
            _prepared_on.add(raw)
        try:
            cursor.execute(_RUN_SQL, params)
        except DatabaseError as exc:
            # Gone from the session (a pooler's DISCARD ALL, say), or planned for a table
            # whose columns a migration changed since: prepare it again, once. Either error
            # comes before anything was written.
            stale = exc.__cause__
            if attempt == 2 or not isinstance(
                stale, errors.InvalidSqlStatementName | errors.FeatureNotSupported
            ):
                raise
            if isinstance(stale, errors.FeatureNotSupported):
                cursor.execute(f"DEALLOCATE {_PREPARED}")
            _prepared_on.discard(raw)
            continue
        cursor.nextset()  # past the lock statement's row
        row: _BatchRow | None = cursor.fetchone()
        return row
    raise AssertionError("unreachable")


def _within_limits(cursor: CursorWrapper, batch: list[_Ask]) -> list[_Ask]:
    """Count every ask of the batch against the per-user and per-address limits, all in
    one statement (its own transaction, committed before the batch takes the row lock),
    in arrival order; refuse those past a limit. The asks left go on."""
    limits = []
    for ask in batch:
        limits += [Limit(_LIMIT_ADDRESS, ask.address), Limit(_LIMIT_USER, str(ask.user_id))]
    verdicts = count(limits, cursor=cursor)
    admitted = []
    for n, ask in enumerate(batch):
        limited = verdicts[2 * n] or verdicts[2 * n + 1]
        if limited is None:
            admitted.append(ask)
        else:
            ask.result = limited
    return admitted


@dataclass
class SoldOut:
    available: int


# What an ask comes to: a Booking, SoldOut, a Problem (the hold limit), RateLimited, None
# (let the regular view decide) or an exception.
Outcome = Booking | SoldOut | Problem | RateLimited | Exception | None


def _locked() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(eq=False)  # compared by identity
class _Ask:
    tickets: int
    user_id: uuid.UUID
    address: str
    # Held until the ask is woken, once: to lead the next batch, or with its result. A bare
    # lock, released in C, costs the waking leader much less than Event.set().
    wake: threading.Lock = field(default_factory=_locked)
    lead: bool = False
    done: bool = False
    result: Outcome = None


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

    def book(self, *, event_id: int, tickets: int, user_id: uuid.UUID, address: str) -> Outcome:
        until = self._sold_out_until.get(event_id)
        if until is not None:
            if until > self._clock():
                return SoldOut(available=0)
            self._sold_out_until.pop(event_id, None)
        ask = _Ask(tickets=tickets, user_id=user_id, address=address)
        with self._lock:
            queue = self._queues.setdefault(event_id, _Queue())
            queue.waiting.append(ask)
            if not queue.running:
                queue.running = ask.lead = True
        if not ask.lead:
            ask.wake.acquire()
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
            # The successor first: its batch is what the database waits for next.
            if successor is not None:
                successor.wake.release()
            for ask in batch:
                ask.done = True
                ask.wake.release()

    def _run(self, event_id: int, batch: list[_Ask]) -> None:
        now = timezone.now()
        expires_at = hold_expires_at(now)
        # Outside any atomic() block (a middleware): the two statements are one transaction.
        with _cursor() as cursor:
            batch = _within_limits(cursor, batch)
            if not batch:
                return
            row = _execute_batch(
                cursor,
                {
                    "event_id": event_id,
                    "users": [ask.user_id for ask in batch],
                    "tickets": [ask.tickets for ask in batch],
                    "now": now,
                    "expires_at": expires_at,
                    "expires_at_iso": encode_datetime(expires_at),
                    "event_type": BookingCreated.TYPE,
                    "producer": settings.SERVICE_NAME,
                    "channel": NOTIFY_CHANNEL,
                    "hold_limit": settings.BOOKING_MAX_HELD_TICKETS,
                },
            )
        if row is None:
            return  # unknown event: the regular view answers 404
        (open_, price, currency, left, granted_ns, ids, booked, published, notified,
         capped_ns, capped_held, db_now, earliest) = row  # fmt: skip
        if not open_:
            return  # canceled or started: the regular view explains
        if booked != len(ids) or published != len(ids) or notified != (1 if ids else 0):
            # The locked row disagreed with its own UPDATE; nothing was written.
            raise RuntimeError(f"batched booking of event {event_id} wrote {row}")
        granted = dict(zip(granted_ns, ids, strict=True))
        capped = dict(zip(capped_ns, capped_held, strict=True))
        if ids:
            earliest = expires_at if earliest is None else min(earliest, expires_at)
        # Refused while expired holds wait for release: the regular view releases them and
        # tries again. Otherwise the tickets are really gone.
        expired = earliest is not None and earliest <= db_now
        for n, ask in enumerate(batch, start=1):
            booking_id = granted.get(n)
            if booking_id is None:
                if expired:
                    ask.result = None
                elif n in capped:
                    ask.result = hold_limit_reached(held=capped[n], tickets=ask.tickets)
                else:
                    ask.result = SoldOut(available=left)
            else:
                ask.result = Booking(
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
        if left == 0 and not expired:
            # Remembered no longer than the cache time, nor past the moment the first
            # pending hold (this batch's included) expires and its tickets come back.
            ttl = float(settings.BOOKING_SOLDOUT_CACHE_SECONDS)
            if earliest is not None:
                ttl = min(ttl, (earliest - db_now).total_seconds())
            self._sold_out_until[event_id] = self._clock() + ttl


def _iso(value: dt.datetime | None) -> str | None:
    """DRF's ISO 8601 output for the service's time zone (UTC), without its per-call
    settings lookups."""
    if value is None:
        return None
    text = value.astimezone(dt.UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


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
            body = parsers.loads(parsers.read_body(request))
        except Problem:
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
            result = self.batcher.book(
                event_id=event_id,
                tickets=tickets,
                user_id=user_id,
                address=client_address(request),
            )
        except DatabaseError:
            result = DatabaseError()
        if result is None:
            setattr(request, COUNTED_ATTRIBUTE, True)
            return None
        if isinstance(result, SoldOut):
            body = problem_body(
                409,
                detail=f"Not enough tickets left: {result.available} available, {tickets} asked.",
                code="sold-out",
                extra={"available_tickets": result.available},
            )
            return _json(409, body, PROBLEM_CONTENT_TYPE)
        if isinstance(result, Problem):
            body = problem_body(
                result.status_code,
                detail=str(result.detail),
                code=result.problem_code,
                extra=result.extra,
            )
            return _json(result.status_code, body, PROBLEM_CONTENT_TYPE)
        if isinstance(result, RateLimited):
            body = problem_body(429, detail=str(result.detail), code=result.default_code)
            response = _json(429, body, PROBLEM_CONTENT_TYPE)
            response["Retry-After"] = str(result.wait)
            return response
        if isinstance(result, Exception):
            body = problem_body(503, detail="The service is busy; retry shortly.", code="busy")
            response = _json(503, body, PROBLEM_CONTENT_TYPE)
            response["Retry-After"] = "1"
            return response
        return _json(201, booking_representation(result))
