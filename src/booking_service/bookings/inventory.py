"""Inventory: the tickets of an event and the holds that take them. Every rule about them
lives here, and both booking paths (the regular one and the batched one) use it.

- The counter. `Event.available_tickets` counts tickets neither held nor sold; the database
  keeps it within `0..total_tickets` (CHECK constraints), so no bug here can oversell.
- Locking. Every write that touches an event's counter and its bookings takes the event row
  first (`lock_event`), then booking rows, so two such writes can wait for each other but
  never deadlock. Taking tickets locks the row by its own conditional UPDATE; confirming a
  payment locks only the booking.
- On sale. An event sells while it is active and has not started: `status = 'active' AND
  starts_at > now`, one rule, written once beside the event model (the events listing uses
  it too) for SQL (`on_sale_sql`), the ORM (`on_sale`) and Python (`Event.is_on_sale`).
- Holds end by cancelation or expiry (`end_holds`), and an expired hold goes back on sale
  lazily: the next buyer of the event releases it (`release_event_holds`) before being told
  it is sold out, and the sweeper releases the rest.
- `booking.created`, the message a new hold publishes, in Python (`booking_created`) and as
  the SQL the batched path builds it with (`payload.booking_created_sql`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, QuerySet, Sum
from django.utils import timezone

from booking_service.bookings.messages import booking_message
from booking_service.bookings.models import Booking, BookingStatus, CancelReason
from booking_service.events.models import Event, EventStatus
from booking_service.events.models import on_sale as on_sale  # the rule, for the ORM
from booking_service.events.models import on_sale_sql as on_sale_sql  # and for SQL
from booking_service.payments.models import PaymentStatus
from servicekit.errors import Conflict
from servicekit.messages import BookingCanceled, BookingCreated, BookingExpired
from servicekit.outbox.services import outbox_emit_many

EVENTS = Event._meta.db_table
BOOKINGS = Booking._meta.db_table
RELEASE_BATCH = 500

# `SELECT ... FOR UPDATE` of one event row (psycopg's placeholder; the batched path sends it
# with its own statement).
LOCK_EVENT_SQL = f"SELECT 1 FROM {EVENTS} WHERE id = %(event_id)s FOR UPDATE"  # noqa: S608


def lock_event(event_id: int) -> bool:
    """Lock the event row until the transaction ends; False when it does not exist.

    Outside a transaction the lock would end with its own statement and protect nothing, so
    that is refused."""
    if not connection.in_atomic_block:
        raise RuntimeError("lock_event outside a transaction locks nothing")
    with connection.cursor() as cursor:
        cursor.execute(LOCK_EVENT_SQL, {"event_id": event_id})
        return cursor.fetchone() is not None


# The counter ------------------------------------------------------------------------------

_TAKE_TICKETS_SQL = f"""
    UPDATE {EVENTS}
    SET available_tickets = available_tickets - %(tickets)s
    WHERE id = %(event_id)s AND available_tickets >= %(tickets)s AND {on_sale_sql()}
    RETURNING organizer_id, name, price_per_ticket, currency, date, time, starts_at, location,
              total_tickets, available_tickets
"""  # noqa: S608 (the table name comes from the model)


def take_tickets(*, event_id: int, tickets: int) -> Event | None:
    """Take `tickets` of an event on sale, in one conditional UPDATE (which locks the row
    for the rest of the transaction); None when the event cannot give them."""
    with connection.cursor() as cursor:
        cursor.execute(_TAKE_TICKETS_SQL, {"tickets": tickets, "event_id": event_id})
        row = cursor.fetchone()
    if row is None:
        return None
    organizer_id, name, price, currency, date, time, starts_at, location, total, left = row
    return Event(
        id=event_id,
        organizer_id=organizer_id,
        name=name,
        price_per_ticket=price,
        currency=currency,
        date=date,
        time=time,
        starts_at=starts_at,
        location=location,
        total_tickets=total,
        available_tickets=left,
        status=EventStatus.ACTIVE,
    )


def return_tickets(*, event_id: int, tickets: int) -> None:
    """Put tickets back on the counter (the event row is locked)."""
    if tickets:
        Event.objects.filter(pk=event_id).update(available_tickets=F("available_tickets") + tickets)


def change_tickets(*, event: Event, delta: int) -> None:
    """Take `delta` more tickets of a held booking's event (or give back `-delta`); 409
    `sold-out` when too few are left. The event row is locked."""
    changed = Event.objects.filter(
        pk=event.pk, status=EventStatus.ACTIVE, available_tickets__gte=delta
    ).update(available_tickets=F("available_tickets") - delta)
    if not changed:
        raise sold_out(available=event.available_tickets)
    event.available_tickets -= delta


def set_total_tickets(event: Event, total: int) -> None:
    """A new `total_tickets` moves `available_tickets` by the same amount; it may not go below
    what is held plus sold. The event row is locked; the caller saves."""
    taken = event.total_tickets - event.available_tickets
    if total < taken:
        raise Conflict(
            f"{taken} tickets are held or sold; total_tickets cannot go below that.",
            code="total-below-taken",
            extra={"taken_tickets": taken},
        )
    event.total_tickets = total
    event.available_tickets = total - taken


def sold_out(*, available: int, asked: int | None = None) -> Conflict:
    """The answer when too few tickets are left (both booking paths give it)."""
    detail = f"Not enough tickets left: {available} available"
    return Conflict(
        f"{detail}, {asked} asked." if asked is not None else f"{detail}.",
        code="sold-out",
        extra={"available_tickets": available},
    )


def held_tickets(*, user_id: uuid.UUID, event_id: int, excluding: int | None = None) -> int:
    """Tickets in the customer's pending holds of the event. Called with the event row
    locked, so two holds of one customer cannot both pass the hold limit: the second one
    sees the first one's booking."""
    holds = Booking.objects.filter(user_id=user_id, event_id=event_id, status=BookingStatus.PENDING)
    if excluding is not None:
        holds = holds.exclude(pk=excluding)
    return holds.aggregate(held=Sum("tickets_booked"))["held"] or 0


def hold_limit_reached(*, held: int, tickets: int) -> Conflict:
    """The answer to a hold that would take a customer past `BOOKING_MAX_HELD_TICKETS`
    (both booking paths give it)."""
    limit = settings.BOOKING_MAX_HELD_TICKETS
    return Conflict(
        f"One customer may hold at most {limit} tickets of an event at a time; "
        f"you hold {held}, so {tickets} more is too many.",
        code="hold-limit-reached",
        extra={"hold_limit": limit, "held_tickets": held},
    )


def hold_expires_at(now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(seconds=settings.BOOKING_HOLD_SECONDS)


# Holds ending -----------------------------------------------------------------------------


def end_holds(bookings: Sequence[Booking], *, reason: str, now: dt.datetime) -> None:
    """Mark locked active bookings canceled for `reason` and publish each: `booking.expired`
    for an expired hold, `booking.canceled` otherwise. The caller returns their tickets."""
    Booking.objects.filter(pk__in=[booking.pk for booking in bookings]).update(
        status=BookingStatus.CANCELED, cancel_reason=reason, canceled_at=now, updated_at=now
    )
    message = BookingExpired if reason == CancelReason.EXPIRED else BookingCanceled
    for booking in bookings:
        booking.status = BookingStatus.CANCELED
        booking.cancel_reason = reason
        booking.canceled_at = now
    outbox_emit_many([booking_message(message, booking, reason=reason) for booking in bookings])


def expired_holds(*, now: dt.datetime) -> QuerySet[Booking]:
    """Pending bookings whose hold has ended and whose inventory may go back on sale.

    A hold whose payment is pending (the provider's answer is unknown, so the charge may
    have gone through) keeps its inventory until `PAYMENT_PENDING_HOLD_GRACE_SECONDS` past
    its expiry, so the sweeper can still confirm it; after that it is released like any
    other, and a success learnt later is refunded.
    """
    grace_start = now - dt.timedelta(seconds=settings.PAYMENT_PENDING_HOLD_GRACE_SECONDS)
    return Booking.objects.filter(status=BookingStatus.PENDING, expires_at__lte=now).exclude(
        expires_at__gt=grace_start, payments__status=PaymentStatus.PENDING
    )


def release_event_holds(*, event_id: int, now: dt.datetime, booking_id: int | None = None) -> int:
    """Expire the event's ended holds (or just `booking_id`) and return their tickets, in
    batches, each in its own transaction. Locked bookings are skipped: whoever holds the lock
    (a payment being confirmed) decides their fate. Returns how many expired."""
    # A sold-out event is asked this by every late buyer: look (index only, no lock) before
    # taking the event row lock.
    event_holds = expired_holds(now=now).filter(event_id=event_id)
    if booking_id is not None:
        event_holds = event_holds.filter(pk=booking_id)
    if not event_holds.exists():
        return 0
    released = 0
    while True:
        with transaction.atomic():
            if not lock_event(event_id):
                return released
            expired = list(
                event_holds.select_for_update(skip_locked=True, of=("self",))
                .select_related("event")
                .order_by("id")[:RELEASE_BATCH]
            )
            if not expired:
                return released
            returned = sum(booking.tickets_booked or 0 for booking in expired)
            return_tickets(event_id=event_id, tickets=returned)
            # The messages show the counter after the release.
            for booking in expired:
                if booking.event is not None:
                    booking.event.available_tickets += returned
            end_holds(expired, reason=CancelReason.EXPIRED, now=now)
        released += len(expired)
        if len(expired) < RELEASE_BATCH:
            return released


def release_slot_holds(*, now: dt.datetime, booking_id: int | None = None) -> int:
    """Expire ended slot holds (or just `booking_id`), in batches; returns how many."""
    released = 0
    while True:
        with transaction.atomic():
            expired = expired_holds(now=now).filter(resource__isnull=False)
            if booking_id is not None:
                expired = expired.filter(pk=booking_id)
            slots = list(
                expired.select_for_update(skip_locked=True, of=("self",))
                .select_related("resource")
                .order_by("id")[:RELEASE_BATCH]
            )
            end_holds(slots, reason=CancelReason.EXPIRED, now=now)
        released += len(slots)
        if len(slots) < RELEASE_BATCH:
            return released


# What an event's tickets are doing ----------------------------------------------------------


@dataclass(frozen=True)
class EventInventory:
    """`total = available + held + sold` holds for every event at every moment.

    `held` counts every pending booking, including expired ones whose tickets have not been
    returned yet; `releasable` is that expired part (the next booking attempt or the sweeper
    returns it).
    """

    event_id: int
    total: int
    available: int
    held: int
    sold: int
    releasable: int


def event_inventory(*, event_id: int, now: dt.datetime | None = None) -> EventInventory | None:
    """One statement, so one snapshot: the numbers are consistent with each other."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT e.total_tickets, e.available_tickets,
                   COALESCE(SUM(b.tickets_booked) FILTER (WHERE b.status = %(pending)s), 0),
                   COALESCE(SUM(b.tickets_booked) FILTER (WHERE b.status = %(confirmed)s), 0),
                   COALESCE(SUM(b.tickets_booked)
                            FILTER (WHERE b.status = %(pending)s AND b.expires_at <= %(now)s), 0)
            FROM {EVENTS} e LEFT JOIN {BOOKINGS} b ON b.event_id = e.id
            WHERE e.id = %(event_id)s
            GROUP BY e.id
            """,  # noqa: S608 (table names come from the models)
            {
                "pending": BookingStatus.PENDING,
                "confirmed": BookingStatus.CONFIRMED,
                "now": now,
                "event_id": event_id,
            },
        )
        row = cursor.fetchone()
    if row is None:
        return None
    total, available, held, sold, releasable = (int(value) for value in row)
    return EventInventory(event_id, total, available, held, sold, releasable)


# booking.created ----------------------------------------------------------------------------


def booking_created(booking: Booking) -> BookingCreated:
    """`booking.created` of a new hold (its SQL form: `payload.booking_created_sql`)."""
    return booking_message(BookingCreated, booking)
