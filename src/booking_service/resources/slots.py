"""Slot arithmetic in a resource's own timezone: opening hours, granularity, free intervals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from booking_service.resources.models import Resource
from servicekit.errors import Unprocessable

MAX_SLOT_BOOKING = dt.timedelta(days=1)
MAX_AVAILABILITY_RANGE = dt.timedelta(days=31)
# How far ahead slots can be booked or looked at (also keeps date arithmetic far from year 9999).
MAX_ADVANCE = dt.timedelta(days=5 * 366)


@dataclass(frozen=True)
class Interval:
    start: dt.datetime
    end: dt.datetime


def resource_zone(resource: Resource) -> ZoneInfo:
    return ZoneInfo(resource.timezone)


def opening_window(resource: Resource, day: dt.date) -> Interval:
    """The opening hours of one local calendar day, as aware UTC datetimes."""
    zone = resource_zone(resource)
    opens = dt.datetime.combine(day, resource.opening_time, tzinfo=zone)
    closes = dt.datetime.combine(day, resource.closing_time, tzinfo=zone)
    return Interval(opens.astimezone(dt.UTC), closes.astimezone(dt.UTC))


def slot_units(
    resource: Resource, *, start_time: dt.datetime, end_time: dt.datetime, now: dt.datetime
) -> int:
    """How many slots `[start_time, end_time)` spans; 422 when it is not a bookable range."""
    if start_time.tzinfo is None or end_time.tzinfo is None:
        raise Unprocessable("start_time and end_time need a timezone offset.", code="naive-time")
    if end_time <= start_time:
        raise Unprocessable("end_time must be after start_time.", code="invalid-range")
    if start_time < now:
        raise Unprocessable("start_time is in the past.", code="slot-in-past")
    if end_time > now + MAX_ADVANCE:
        raise Unprocessable("Slots can be booked at most five years ahead.", code="too-far-ahead")
    if end_time - start_time > MAX_SLOT_BOOKING:
        raise Unprocessable("A slot booking lasts at most one day.", code="slot-too-long")
    zone = resource_zone(resource)
    local_start = start_time.astimezone(zone)
    window = opening_window(resource, local_start.date())
    if not (window.start <= start_time and end_time <= window.end):
        raise Unprocessable(
            f"The resource is open from {resource.opening_time:%H:%M} to "
            f"{resource.closing_time:%H:%M} ({resource.timezone}).",
            code="outside-opening-hours",
        )
    slot = dt.timedelta(minutes=resource.slot_minutes)
    offset = start_time - window.start
    length = end_time - start_time
    if offset % slot or length % slot:
        raise Unprocessable(
            f"Slots start on the opening time plus multiples of {resource.slot_minutes} "
            "minutes and last a multiple of that.",
            code="slot-misaligned",
        )
    return length // slot


def slot_amount(resource: Resource, units: int) -> Decimal:
    return resource.price_per_slot * units


def free_intervals(
    resource: Resource,
    *,
    start: dt.datetime,
    end: dt.datetime,
    busy: Iterable[Interval],
    now: dt.datetime,
) -> list[Interval]:
    """Opening hours within `[start, end)` minus `busy`, from the next slot boundary on."""
    zone = resource_zone(resource)
    slot = dt.timedelta(minutes=resource.slot_minutes)
    busy_sorted = sorted(busy, key=lambda interval: interval.start)
    result: list[Interval] = []
    day = start.astimezone(zone).date() - dt.timedelta(days=1)
    last_day = end.astimezone(zone).date()
    while day <= last_day:
        window = opening_window(resource, day)
        day += dt.timedelta(days=1)
        lower = max(window.start, start)
        if lower < now:
            # The first slot boundary not in the past.
            steps = -(-(now - window.start) // slot)
            lower = max(lower, window.start + steps * slot)
        upper = min(window.end, end)
        cursor = lower
        for interval in busy_sorted:
            if interval.end <= cursor or interval.start >= upper:
                continue
            if interval.start > cursor:
                result.append(Interval(cursor, interval.start))
            cursor = max(cursor, interval.end)
        if cursor < upper:
            result.append(Interval(cursor, upper))
    return [interval for interval in result if interval.end > interval.start]
