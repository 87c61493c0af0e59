from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from booking_service.bookings.models import Booking, BookingStatus
from booking_service.events.models import Event, EventStatus


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


def event_list(
    *,
    text: str | None = None,
    location: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> QuerySet[Event]:
    """Upcoming active events with tickets left, by date then time."""
    now = timezone.now().astimezone(dt.UTC)
    events = Event.objects.filter(status=EventStatus.ACTIVE, available_tickets__gt=0).filter(
        Q(date__gt=now.date()) | Q(date=now.date(), time__gt=now.time())
    )
    if text:
        events = events.filter(
            Q(name__icontains=text) | Q(description__icontains=text) | Q(location__icontains=text)
        )
    if location:
        events = events.filter(location__icontains=location)
    if date_from is not None:
        events = events.filter(date__gte=date_from)
    if date_to is not None:
        events = events.filter(date__lte=date_to)
    return events.order_by("date", "time", "id")


def event_get(*, event_id: int) -> Event | None:
    return Event.objects.filter(pk=event_id).first()


def event_inventory(*, event_id: int, now: dt.datetime | None = None) -> EventInventory | None:
    """One statement, so one snapshot: the four numbers are consistent with each other."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT e.total_tickets, e.available_tickets,
                   COALESCE(SUM(b.tickets_booked) FILTER (WHERE b.status = %s), 0),
                   COALESCE(SUM(b.tickets_booked) FILTER (WHERE b.status = %s), 0),
                   COALESCE(SUM(b.tickets_booked)
                            FILTER (WHERE b.status = %s AND b.expires_at <= %s), 0)
            FROM {Event._meta.db_table} e
            LEFT JOIN {Booking._meta.db_table} b ON b.event_id = e.id
            WHERE e.id = %s
            GROUP BY e.id
            """,  # noqa: S608 (table names come from the models)
            [
                BookingStatus.PENDING,
                BookingStatus.CONFIRMED,
                BookingStatus.PENDING,
                now,
                event_id,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    total, available, held, sold, releasable = (int(value) for value in row)
    return EventInventory(
        event_id=event_id,
        total=total,
        available=available,
        held=held,
        sold=sold,
        releasable=releasable,
    )
