"""The batcher's executor: one batch of ticket holds in one round trip to PostgreSQL.

Two statements are sent together in autocommit, which PostgreSQL runs as one transaction:
`SELECT ... FOR UPDATE` of the event row, then `batch.sql` (prepared once per connection,
so the server does not plan it again while it holds the row lock). The row lock is held only
inside the server, for the second statement and the commit, never across a round trip, so a
busy or descheduled Python process cannot stretch it. (Taking the lock and updating in one
statement does not work: an UPDATE skips a row that a FOR UPDATE of the same statement
locked after a concurrent change.)

Before that, the asks of the batch are counted against the per-user and per-address rate
limits (`RATE_LIMIT_BOOKING_PER_*`, the regular view's counters), all in one statement and
its own transaction, in arrival order; an ask past a limit is answered with the regular
view's 429.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from booking_service.bookings import inventory
from booking_service.bookings.batching.batcher import Ask, Decided, SoldOut
from booking_service.bookings.models import Booking, BookingKind, BookingStatus
from booking_service.bookings.payload import booking_created_sql
from servicekit.errors import Problem
from servicekit.messages import BookingCreated, encode_datetime
from servicekit.outbox.models import NEW_MESSAGE_ID_SQL, OutboxMessage
from servicekit.outbox.services import NOTIFY_CHANNEL
from servicekit.prepared import Prepared
from servicekit.ratelimits import Limit, RateLimited, count, setting_name

# What an ask comes to: its Booking, SoldOut, a Problem (the hold limit), RateLimited, or
# None: the regular view decides (an unknown, canceled or started event, or expired holds
# waiting to be released).
Outcome = Booking | SoldOut | Problem | RateLimited | None

_LIMIT_USER = setting_name("booking", "user")
_LIMIT_ADDRESS = setting_name("booking", "address")

BATCH_SQL = (
    (Path(__file__).with_name("batch.sql"))
    .read_text()
    .format(
        events=inventory.EVENTS,
        bookings=inventory.BOOKINGS,
        outbox=OutboxMessage._meta.db_table,
        message_id=OutboxMessage._meta.get_field("message_id").column,
        new_message_id=NEW_MESSAGE_ID_SQL,
        on_sale=inventory.on_sale_sql(now="clock_timestamp()", table="locked"),
        booking_created=booking_created_sql(
            booking_id="g.id",
            user_id="g.user_id",
            tickets="g.tickets",
            amount="l.price_per_ticket * g.tickets",
            event="l",
            expires_at="$6",
        ),
    )
)
_BATCH = Prepared(
    "turnstile_book_batch",
    ["bigint", "uuid[]", "int[]", "timestamptz", "timestamptz", "text", "text", "text", "text",
     "int"],
    BATCH_SQL,
)  # fmt: skip
_RUN_SQL = (
    f"{inventory.LOCK_EVENT_SQL}; "
    f"EXECUTE {_BATCH.name} (%(event_id)s, %(users)s, %(tickets)s, %(now)s, %(expires_at)s, "
    "%(expires_at_iso)s, %(event_type)s, %(producer)s, %(channel)s, %(hold_limit)s)"
)

# The row `batch.sql` answers (see its last SELECT).
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


def execute_batch(event_id: int, batch: list[Ask]) -> Decided[Outcome]:
    """The batcher's executor, on the calling thread's database connection (in autocommit:
    outside any atomic block)."""
    now = timezone.now()
    expires_at = inventory.hold_expires_at(now)
    outcomes: list[Outcome] = [None] * len(batch)
    with _cursor() as cursor:
        admitted = _within_limits(cursor, batch, outcomes)
        if not admitted:
            return Decided(outcomes)
        row = _execute(
            cursor,
            {
                "event_id": event_id,
                "users": [batch[n].user_id for n in admitted],
                "tickets": [batch[n].tickets for n in admitted],
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
        return Decided(outcomes)  # unknown event: the regular view answers 404
    (open_, price, currency, left, granted_ns, ids, booked, published, notified,
     capped_ns, capped_held, db_now, earliest) = row  # fmt: skip
    if not open_:
        return Decided(outcomes)  # canceled or started: the regular view explains
    if booked != len(ids) or published != len(ids) or notified != (1 if ids else 0):
        # The locked row disagreed with its own UPDATE; nothing was written.
        raise RuntimeError(f"batched booking of event {event_id} wrote {row}")
    granted = dict(zip(granted_ns, ids, strict=True))
    capped = dict(zip(capped_ns, capped_held, strict=True))
    if ids:
        earliest = expires_at if earliest is None else min(earliest, expires_at)
    # Refused while expired holds wait for release: the regular view releases them and tries
    # again. Otherwise the tickets are really gone.
    expired = earliest is not None and earliest <= db_now
    for position, n in enumerate(admitted, start=1):
        ask = batch[n]
        booking_id = granted.get(position)
        if booking_id is not None:
            outcomes[n] = _booking(booking_id, ask, event_id, price, currency, expires_at, now)
        elif expired:
            outcomes[n] = None
        elif position in capped:
            outcomes[n] = inventory.hold_limit_reached(held=capped[position], tickets=ask.tickets)
        else:
            outcomes[n] = SoldOut(available=left)
    if left != 0 or expired:
        return Decided(outcomes)
    # Remembered no longer than the cache time, nor past the moment the first pending hold
    # (this batch's included) expires and its tickets come back.
    ttl = float(settings.BOOKING_SOLDOUT_CACHE_SECONDS)
    if earliest is not None:
        ttl = min(ttl, (earliest - db_now).total_seconds())
    return Decided(outcomes, sold_out_for=ttl)


def _booking(
    booking_id: int,
    ask: Ask,
    event_id: int,
    price: Decimal,
    currency: str,
    expires_at: dt.datetime,
    now: dt.datetime,
) -> Booking:
    return Booking(
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


def _within_limits(cursor: CursorWrapper, batch: list[Ask], outcomes: list[Outcome]) -> list[int]:
    """Count every ask against the rate limits in one statement (its own transaction,
    committed before the batch takes the row lock), in arrival order; refuse those past a
    limit. Returns the positions of the asks that go on."""
    limits = []
    for ask in batch:
        limits += [Limit(_LIMIT_ADDRESS, ask.address), Limit(_LIMIT_USER, str(ask.user_id))]
    verdicts = count(limits, cursor=cursor)
    admitted = []
    for n in range(len(batch)):
        limited = verdicts[2 * n] or verdicts[2 * n + 1]
        if limited is None:
            admitted.append(n)
        else:
            outcomes[n] = limited
    return admitted


def _cursor() -> CursorWrapper:
    """A client-side-binding cursor (several statements in one `execute()`) on the thread's
    connection, without Django's per-request health check (`CONN_HEALTH_CHECKS`), which
    would cost the batch another round trip. A connection that broke anyway fails its batch
    with a 503; `wrap_database_errors` marks it, and Django replaces it at the end of the
    request."""
    connection.ensure_connection()
    raw: Any = psycopg.ClientCursor(connection.connection)
    return (
        connection.make_debug_cursor(raw)
        if connection.queries_logged
        else connection.make_cursor(raw)
    )


def _execute(cursor: CursorWrapper, params: dict[str, Any]) -> _BatchRow | None:
    """Run the batch; the statement's row (None: unknown event)."""
    _BATCH.execute(cursor, _RUN_SQL, params)
    cursor.nextset()  # past the lock statement's row
    row: _BatchRow | None = cursor.fetchone()
    return row
