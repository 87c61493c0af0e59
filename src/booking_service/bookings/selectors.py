from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet
from django.utils import timezone

from booking_service.bookings.models import Booking, BookingStatus
from booking_service.resources.models import Resource
from booking_service.resources.slots import (
    MAX_ADVANCE,
    MAX_AVAILABILITY_RANGE,
    Interval,
    free_intervals,
)
from servicekit.actors import Actor
from servicekit.errors import Unprocessable


def booking_list(
    *,
    actor: Actor,
    event_id: int | None = None,
    resource_id: int | None = None,
    status: str | None = None,
) -> QuerySet[Booking]:
    """The caller's bookings; an admin sees all; an organizer also sees every booking of the
    events and resources they own when filtering by one of them."""
    # The list shows related ids only, so no join is needed.
    bookings = Booking.objects.all()
    if not actor.is_admin:
        visible = Q(user_id=actor.id)
        if event_id is not None:
            visible |= Q(event__organizer_id=actor.id)
        if resource_id is not None:
            visible |= Q(resource__organizer_id=actor.id)
        bookings = bookings.filter(visible)
    if event_id is not None:
        bookings = bookings.filter(event_id=event_id)
    if resource_id is not None:
        bookings = bookings.filter(resource_id=resource_id)
    if status:
        bookings = bookings.filter(status=status)
    return bookings.order_by("-created_at", "-id")


def booking_get(*, booking_id: int, actor: Actor) -> Booking | None:
    bookings = Booking.objects.select_related("event", "resource").filter(pk=booking_id)
    if not actor.is_admin:
        bookings = bookings.filter(user_id=actor.id)
    return bookings.first()


def resource_busy_intervals(
    *, resource: Resource, start: dt.datetime, end: dt.datetime, now: dt.datetime
) -> list[Interval]:
    """Active bookings overlapping `[start, end)`; an expired hold does not count."""
    rows = (
        Booking.objects.filter(resource=resource, start_time__lt=end, end_time__gt=start)
        .filter(
            Q(status=BookingStatus.CONFIRMED) | Q(status=BookingStatus.PENDING, expires_at__gt=now)
        )
        .order_by("start_time")
        .values_list("start_time", "end_time")
    )
    return [
        Interval(start_time, end_time) for start_time, end_time in rows if start_time and end_time
    ]


def resource_availability(
    *, resource: Resource, start: dt.datetime, end: dt.datetime
) -> list[Interval]:
    """The free intervals of a resource's opening hours in `[start, end)`."""
    if end <= start:
        raise Unprocessable("end must be after start.", code="invalid-range")
    if end - start > MAX_AVAILABILITY_RANGE:
        raise Unprocessable("Ask for at most 31 days at a time.", code="range-too-long")
    now = timezone.now()
    if start < now - MAX_ADVANCE or end > now + MAX_ADVANCE:
        raise Unprocessable("Ask about the next five years at most.", code="range-too-far")
    busy = resource_busy_intervals(resource=resource, start=start, end=end, now=now)
    return free_intervals(resource, start=start, end=end, busy=busy, now=now)
