from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.db import transaction

from booking_service.resources.models import Resource
from servicekit.problems import Unprocessable

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


def resource_create(*, organizer_id: uuid.UUID, currency: str, **fields: Any) -> Resource:
    unknown = set(fields) - RESOURCE_FIELDS
    if unknown:
        raise TypeError(f"unknown resource fields: {sorted(unknown)}")
    resource = Resource(organizer_id=organizer_id, currency=currency, **fields)
    resource.price_per_slot = Decimal(resource.price_per_slot)
    resource.save()
    return resource


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
