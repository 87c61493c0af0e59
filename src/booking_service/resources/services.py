from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from django.db import transaction

from booking_service.resources.models import Resource
from servicekit.errors import Unprocessable

RESOURCE_FIELDS = frozenset(
    {
        "name",
        "description",
        "location",
        "timezone",
        "opening_time",
        "closing_time",
        "slot_minutes",
        "price_per_slot",
    }
)


def resource_create(
    *,
    organizer_id: uuid.UUID,
    name: str,
    timezone: str,
    opening_time: dt.time,
    closing_time: dt.time,
    slot_minutes: int,
    price_per_slot: Decimal,
    currency: str,
    description: str = "",
    location: str = "",
) -> Resource:
    if closing_time <= opening_time:
        raise Unprocessable("closing_time must be after opening_time.", code="invalid-hours")
    return Resource.objects.create(
        organizer_id=organizer_id,
        name=name,
        description=description,
        location=location,
        timezone=timezone,
        opening_time=opening_time,
        closing_time=closing_time,
        slot_minutes=slot_minutes,
        price_per_slot=price_per_slot,
        currency=currency,
    )


def resource_update(*, resource: Resource, **fields: Any) -> Resource:
    unknown = set(fields) - RESOURCE_FIELDS
    if unknown:
        raise TypeError(f"unknown resource fields: {sorted(unknown)}")
    if not fields:
        return resource
    opening = fields.get("opening_time", resource.opening_time)
    closing = fields.get("closing_time", resource.closing_time)
    if closing <= opening:
        raise Unprocessable("closing_time must be after opening_time.", code="invalid-hours")
    with transaction.atomic():
        for name, value in fields.items():
            setattr(resource, name, value)
        resource.save(update_fields=[*fields, "updated_at"])
    return resource


def resource_deactivate(*, resource: Resource) -> None:
    """Retire a resource: it is no longer listed or bookable; existing bookings stay."""
    resource.is_active = False
    resource.save(update_fields=["is_active", "updated_at"])
