"""What the benchmark puts in the databases before it measures: the organizer, the customers
(minted in bulk), the events of the listing, and stored bookings (`--preload`, and the
1,000 of the customer whose bookings list is measured), written in SQL in a few statements."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import psycopg

from booking_service.bookings.payload import booking_created_sql
from devstack.bench.stack import Stack, http_json

LISTING_EVENTS = 10_000
PRELOAD_EVENTS = 100_000
COLLECTOR_BOOKINGS = 1_000
PRICE = "25.00"
# The text of a UTC timestamp as the message models write it.
ISO_UTC = '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\''


def register_organizer(users: str) -> str:
    """The sale's organizer, through the API: register, then log in; its access token."""
    password = "Turnstile-" + secrets.token_hex(8) + "-pw"
    organizer_email = "organizer@bench.test"
    http_json(
        "POST",
        f"{users}/api/users/register",
        {"name": "Bench Organizer", "email": organizer_email, "password": password,
         "role": "organizer"},
    )  # fmt: skip
    token: str = http_json(
        "POST", f"{users}/api/users/login", {"email": organizer_email, "password": password}
    )["access"]
    return token


# The customers, minted in bulk inside the users service: real accounts (without a usable
# password, so no Argon2id hashing, which would take minutes for thousands) and access
# tokens signed with the service's key, as login issues them. One token per line.
MINT_CUSTOMERS = """
from pathlib import Path
from users_service.accounts.models import User
from users_service.tokens.services import access_token_issue
users = [User(name=f"Buyer {{n}}", email=f"buyer{{n}}@bench.test") for n in range({count})]
for user in users:
    user.set_unusable_password()
User.objects.bulk_create(users, batch_size=2000)
tokens = [access_token_issue(subject=str(u.id), role=u.role, ttl_seconds=6 * 3600) for u in users]
Path({path!r}).write_text("\\n".join(tokens) + "\\n")
"""


def mint_customers(stack: Stack, count: int, path: Path) -> list[str]:
    stack.manage(
        "users_service", "users", "shell", "-c", MINT_CUSTOMERS.format(count=count, path=str(path))
    )
    return path.read_text().split()


def token_subject(token: str) -> str:
    """The `sub` claim of a JWT (read, not verified: the benchmark minted it)."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sub"])


SEED_EVENTS = """
import datetime, decimal, uuid
from booking_service.events.models import Event
organizer = uuid.UUID({organizer!r})
day = datetime.date.today() + datetime.timedelta(days=30)
Event.objects.bulk_create(
    [
        Event(
            name=f"Concert {{n}}", description="", date=day + datetime.timedelta(days=n % 300),
            time=datetime.time(20, 0), location=f"Hall {{n % 50}}", total_tickets=500,
            available_tickets=500, price_per_ticket=decimal.Decimal({price!r}),
            organizer_id=organizer,
        )
        for n in range({count})
    ],
    batch_size=2000,
)
"""


def seed_listing_events(stack: Stack, organizer_id: str) -> range:
    """The upcoming events the listing pages through (500 tickets each); their ids."""
    stack.manage(
        "booking_service", "booking", "shell", "-c",
        SEED_EVENTS.format(organizer=organizer_id, count=LISTING_EVENTS, price=PRICE),
    )  # fmt: skip
    with psycopg.connect(stack.postgres.url("booking")) as conn:
        first, last = conn.execute("SELECT min(id), max(id) FROM events").fetchone() or (0, 0)
    return range(first, last + 1)


# A past season: events that took place over the last year (so the listing of upcoming
# events stays the one measured), from 200 organizers.
PAST_EVENTS_SQL = """
INSERT INTO events (organizer_id, name, description, date, time, location, total_tickets,
                    available_tickets, price_per_ticket, currency, status, created_at,
                    updated_at)
SELECT md5('organizer' || mod(n, 200))::uuid, 'Past event ' || n, '',
       current_date - 1 - mod(n, 365)::int, time '20:00', 'Hall ' || mod(n, 50),
       %(tickets)s, %(tickets)s, %(price)s::numeric, 'USD', 'active', now(), now()
FROM generate_series(0, %(count)s - 1) AS n
RETURNING id
"""

# Bookings n = 0..count-1 of events first_event + n % events, by `user_id` or, without it,
# by `users` customers in turn; 80% confirmed, 10% expired, 10% canceled by the customer
# (no pending hold: the sweeper would expire them in the middle of the measurement);
# created in the 30 days before their event starts (or before now, for upcoming ones).
BOOKINGS_SQL = """
INSERT INTO bookings (user_id, kind, event_id, tickets_booked, status, cancel_reason,
                      expires_at, amount, currency, created_at, updated_at, confirmed_at,
                      canceled_at)
SELECT coalesce(%(user_id)s::uuid, md5('customer' || mod(n, %(users)s))::uuid), 'tickets', e.id,
       b.tickets, b.status, b.reason, b.at + interval '10 minutes', e.price_per_ticket * b.tickets,
       e.currency, b.at, b.at + interval '2 minutes',
       CASE WHEN b.status = 'confirmed' THEN b.at + interval '2 minutes' END,
       CASE WHEN b.status = 'canceled' THEN b.at + interval '2 minutes' END
FROM generate_series(0, %(count)s - 1) AS n
JOIN events e ON e.id = %(first_event)s + mod(n, %(events)s),
LATERAL (
    SELECT 1 + mod(n * 7, 4) AS tickets,
           CASE WHEN mod(n, 10) < 8 THEN 'confirmed' ELSE 'canceled' END AS status,
           CASE mod(n, 10) WHEN 8 THEN 'expired' WHEN 9 THEN 'user' ELSE '' END AS reason,
           least(e.starts_at, now()) - interval '1 hour'
               - interval '1 minute' * mod(n::bigint * 7919, 43200) AS at
) b
"""

# What the relay leaves: each booking's booking.created, sent. They are dated within the
# last 12 hours, inside the relay's retention of sent messages (a day by default), so that
# they stand for the outbox of a busy day rather than a backlog the relay's pruning would be
# deleting during the measurement.
OUTBOX_SQL = """
INSERT INTO outbox_messages (message_id, type, producer, version, occurred_at, data, sent_at,
                             attempts, last_error)
SELECT gen_random_uuid(), 'booking.created', 'booking', 1, m.at, {data},
       m.at + interval '1 second', 1, ''
FROM bookings b JOIN events e ON e.id = b.event_id,
LATERAL (SELECT now() - interval '1 second' * mod(b.id::bigint * 7919, 43200) AS at) m
WHERE b.id > %(after)s
"""

PAYMENTS_SQL = """
INSERT INTO payments (booking_id, user_id, amount, currency, status, provider,
                      provider_reference, provider_idempotency_key, payment_token,
                      failure_reason, retryable, created_at, updated_at)
SELECT id, user_id, amount, currency, 'success', 'sandbox', 'sbx_ch_' || md5(id::text),
       gen_random_uuid(), 'tok_visa', '', false, confirmed_at, confirmed_at
FROM bookings WHERE id > %(after)s AND status = 'confirmed'
"""

# Inventory stays conserved: what the new confirmed bookings sold leaves each event.
SOLD_SQL = """
UPDATE events e SET available_tickets = e.available_tickets - s.tickets
FROM (SELECT event_id, sum(tickets_booked) AS tickets FROM bookings
      WHERE id > %(after)s AND status = 'confirmed' GROUP BY event_id) s
WHERE e.id = s.event_id
"""


def stored_booking_created(*, booking: str, event: str) -> str:
    """`booking.created`'s data for a stored booking (`booking`, `event`: the rows' aliases),
    as the batched path writes it."""
    return booking_created_sql(
        booking_id=f"{booking}.id",
        user_id=f"{booking}.user_id",
        tickets=f"{booking}.tickets_booked",
        amount=f"{booking}.amount",
        event=event,
        expires_at=f"to_char({booking}.expires_at AT TIME ZONE 'UTC', {ISO_UTC})",
    )


def store_bookings(
    conn: psycopg.Connection[tuple[object, ...]],
    *,
    count: int,
    events: range,
    user_id: str | None = None,
    users: int = 1,
) -> int:
    """`count` bookings of `events` with their outbox rows and payments, in one transaction;
    how many were written."""
    with conn.transaction():
        row = conn.execute("SELECT coalesce(max(id), 0) FROM bookings").fetchone()
        after = row[0] if row else 0
        params = {
            "count": count,
            "first_event": events.start,
            "events": len(events),
            "user_id": user_id,
            "users": max(1, users),
            "after": after,
        }
        written = conn.execute(BOOKINGS_SQL, params).rowcount
        conn.execute(
            OUTBOX_SQL.format(data=stored_booking_created(booking="b", event="e")),
            params,
        )
        conn.execute(PAYMENTS_SQL, params)
        conn.execute(SOLD_SQL, params)
    return written


def preload(stack: Stack, count: int) -> int:
    """A season of sales already stored: `count` bookings by count ÷ 10 customers over
    100,000 past events, with their outbox rows (sent) and payments."""
    per_event = -(-count // PRELOAD_EVENTS)
    with psycopg.connect(stack.postgres.url("booking"), autocommit=True) as conn:
        ids = [
            row[0]
            for row in conn.execute(
                PAST_EVENTS_SQL,
                {"count": PRELOAD_EVENTS, "tickets": 4 * per_event + 100, "price": PRICE},
            ).fetchall()
        ]
        return store_bookings(
            conn, count=count, events=range(min(ids), max(ids) + 1), users=count // 10
        )


def seed_collector(stack: Stack, user_id: str, events: range) -> int:
    """The customer whose bookings list is measured: 1,000 bookings of upcoming events."""
    with psycopg.connect(stack.postgres.url("booking"), autocommit=True) as conn:
        return store_bookings(conn, count=COLLECTOR_BOOKINGS, events=events, user_id=user_id)


def settle(stack: Stack) -> None:
    """VACUUM ANALYZE what was written and a checkpoint: the measurement starts from a
    settled database (statistics, hint bits, no dirty pages of the seeding left to write)."""
    with psycopg.connect(stack.postgres.url("booking"), autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '256MB'")
        for table in ("events", "bookings", "payments", "outbox_messages"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
        conn.execute("CHECKPOINT")
