"""Template filters of the web pages: the APIs' ISO 8601 times, readable."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import template

register = template.Library()


@register.filter
def when(value: str | None, zone: str = "UTC") -> str:
    """`2030-06-01T18:00:00Z` → `1 Jun 2030, 18:00 UTC` (or in the zone given)."""
    if not value:
        return ""
    try:
        moment = dt.datetime.fromisoformat(str(value))
        tz = ZoneInfo(zone)
    except (ValueError, ZoneInfoNotFoundError):
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    local = moment.astimezone(tz)
    return f"{local.day} {local:%b %Y, %H:%M} {zone if zone != 'UTC' else 'UTC'}"
