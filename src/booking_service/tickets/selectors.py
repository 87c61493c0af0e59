"""Reads of the tickets app: who may see or scan an event's tickets, the tickets of a
booking, attendees, the check-in count and the sales of an event."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from booking_service.bookings.inventory import EventInventory, event_inventory
from booking_service.bookings.models import Booking, BookingStatus
from booking_service.events.models import Event
from booking_service.tickets.models import EventStaff, Ticket, TicketStatus
from servicekit.actors import Actor

MAX_SERIES_POINTS = 200
RECENT_BOOKINGS = 10


def event_get_managed(*, event_id: int, actor: Actor) -> Event | None:
    """The event if the actor is its organizer or an admin."""
    events = Event.objects.filter(pk=event_id)
    if not actor.is_admin:
        events = events.filter(organizer_id=actor.id)
    return events.first()


def event_get_scannable(*, event_id: int, actor: Actor) -> Event | None:
    """The event if the actor may check its tickets in: its organizer, an admin, or door
    staff the organizer named."""
    events = Event.objects.filter(pk=event_id)
    if not actor.is_admin:
        events = events.filter(
            Q(organizer_id=actor.id)
            | Q(pk__in=EventStaff.objects.filter(user_id=actor.id).values("event_id"))
        )
    return events.first()


def booking_get_with_tickets(*, booking_id: int, actor: Actor) -> Booking | None:
    """The booking if the actor is its owner, its event's organizer or an admin."""
    bookings = Booking.objects.filter(pk=booking_id)
    if not actor.is_admin:
        bookings = bookings.filter(Q(user_id=actor.id) | Q(event__organizer_id=actor.id))
    return bookings.first()


def booking_tickets(*, booking_id: int) -> QuerySet[Ticket]:
    return Ticket.objects.filter(booking_id=booking_id).select_related("checkin").order_by("number")


def event_staff_list(*, event_id: int) -> QuerySet[EventStaff]:
    return EventStaff.objects.filter(event_id=event_id).order_by("created_at", "id")


def event_attendees(*, event_id: int) -> QuerySet[Ticket]:
    """One row per ticket that admits someone (valid or checked in), by booking and number."""
    return (
        Ticket.objects.filter(event_id=event_id)
        .exclude(status=TicketStatus.VOID)
        .select_related("booking", "checkin")
        .order_by("booking_id", "number")
    )


@dataclass(frozen=True)
class CheckInSummary:
    checked_in: int
    expected: int


def checkin_summary(*, event_id: int) -> CheckInSummary:
    counts = Ticket.objects.filter(event_id=event_id).aggregate(
        checked_in=Count("pk", filter=Q(status=TicketStatus.CHECKED_IN)),
        expected=Count("pk", filter=~Q(status=TicketStatus.VOID)),
    )
    return CheckInSummary(checked_in=counts["checked_in"], expected=counts["expected"])


@dataclass(frozen=True)
class SalesPoint:
    at: dt.datetime
    sold: int
    held: int
    available: int


@dataclass(frozen=True)
class EventSales:
    inventory: EventInventory
    revenue: Decimal
    currency: str
    series: list[SalesPoint]
    recent: list[Booking]


# Each booking's changes to the held and sold counts: held from its creation until it was
# confirmed or canceled (released), sold from its confirmation until a cancelation. Summed
# per bucket of the sale's span; the series is their running total.
_SALES_DELTAS_SQL = """
    WITH changes AS (
        SELECT created_at AS at, tickets_booked AS held, 0 AS sold
        FROM bookings WHERE event_id = %(event_id)s
        UNION ALL
        SELECT COALESCE(confirmed_at, canceled_at), -tickets_booked,
               CASE WHEN confirmed_at IS NULL THEN 0 ELSE tickets_booked END
        FROM bookings
        WHERE event_id = %(event_id)s AND (confirmed_at IS NOT NULL OR canceled_at IS NOT NULL)
        UNION ALL
        SELECT canceled_at, 0, -tickets_booked
        FROM bookings
        WHERE event_id = %(event_id)s AND confirmed_at IS NOT NULL AND canceled_at IS NOT NULL
    )
    SELECT LEAST(%(last)s, GREATEST(0, floor(
               extract(epoch FROM at - %(start)s) / %(step)s)::bigint)) AS bucket,
           SUM(held), SUM(sold)
    FROM changes WHERE at <= %(end)s
    GROUP BY bucket ORDER BY bucket
"""


def _series(*, event: Event, total: int, now: dt.datetime) -> list[SalesPoint]:
    start: dt.datetime = event.created_at
    seconds = max((now - start).total_seconds(), 1.0)
    count = max(1, min(MAX_SERIES_POINTS, math.ceil(seconds)))
    step = seconds / count
    with connection.cursor() as cursor:
        cursor.execute(
            _SALES_DELTAS_SQL,
            {"event_id": event.pk, "start": start, "end": now, "step": step, "last": count - 1},
        )
        deltas = {int(bucket): (int(held), int(sold)) for bucket, held, sold in cursor.fetchall()}
    points = []
    held = sold = 0
    for bucket in range(count):
        held_delta, sold_delta = deltas.get(bucket, (0, 0))
        held += held_delta
        sold += sold_delta
        at = now if bucket == count - 1 else start + dt.timedelta(seconds=step * (bucket + 1))
        points.append(SalesPoint(at, sold, held, total - held - sold))
    return points


def event_sales(*, event: Event, now: dt.datetime | None = None) -> EventSales:
    """The event's inventory now, its revenue (confirmed bookings), how sold, held and
    available moved since it was published (at most MAX_SERIES_POINTS points, `available`
    against today's total), and its latest bookings."""
    now = now or timezone.now()
    inventory = event_inventory(event_id=event.pk, now=now)
    if inventory is None:
        raise Event.DoesNotExist(event.pk)
    bookings = Booking.objects.filter(event_id=event.pk)
    revenue = bookings.filter(status=BookingStatus.CONFIRMED).aggregate(revenue=Sum("amount"))[
        "revenue"
    ] or Decimal("0.00")
    return EventSales(
        inventory=inventory,
        revenue=revenue,
        currency=event.currency,
        series=_series(event=event, total=inventory.total, now=now),
        recent=list(bookings.order_by("-created_at", "-id")[:RECENT_BOOKINGS]),
    )
