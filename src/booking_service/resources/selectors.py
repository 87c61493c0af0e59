from __future__ import annotations

import datetime as dt
import uuid

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
from servicekit.problems import Unprocessable


def resource_list(*, organizer_id: uuid.UUID | None = None) -> QuerySet[Resource]:
    resources = Resource.objects.filter(is_active=True)
    if organizer_id is not None:
        resources = resources.filter(organizer_id=organizer_id)
    return resources.order_by("id")


def resource_get(*, resource_id: int) -> Resource | None:
    return Resource.objects.filter(pk=resource_id, is_active=True).first()


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
    if end <= start:
        raise Unprocessable("end must be after start.", code="invalid-range")
    if end - start > MAX_AVAILABILITY_RANGE:
        raise Unprocessable("Ask for at most 31 days at a time.", code="range-too-long")
    now = timezone.now()
    if start < now - MAX_ADVANCE or end > now + MAX_ADVANCE:
        raise Unprocessable("Ask about the next five years at most.", code="range-too-far")
    busy = resource_busy_intervals(resource=resource, start=start, end=end, now=now)
    return free_intervals(resource, start=start, end=end, busy=busy, now=now)
