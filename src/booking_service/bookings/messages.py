"""What the bookings app publishes (through the outbox). The data carries everything a
notification needs, so consumers never call back."""

from __future__ import annotations

import datetime as dt
from typing import Any

from booking_service.bookings.models import Booking

BOOKING_CREATED = "booking.created"
BOOKING_CONFIRMED = "booking.confirmed"
BOOKING_CANCELED = "booking.canceled"
BOOKING_EXPIRED = "booking.expired"


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def booking_organizer_id(booking: Booking) -> str:
    owner = booking.event if booking.event is not None else booking.resource
    if owner is None:
        raise ValueError(f"booking {booking.pk} has neither event nor resource")
    return str(owner.organizer_id)


def booking_data(booking: Booking, *, reason: str | None = None) -> dict[str, Any]:
    event = booking.event
    resource = booking.resource
    return {
        "booking_id": booking.pk,
        "user_id": str(booking.user_id),
        "organizer_id": booking_organizer_id(booking),
        "kind": booking.kind,
        "event_id": event.pk if event is not None else None,
        "event_name": event.name if event is not None else None,
        "resource_id": resource.pk if resource is not None else None,
        "resource_name": resource.name if resource is not None else None,
        "tickets_booked": booking.tickets_booked,
        "start_time": _iso(booking.start_time),
        "end_time": _iso(booking.end_time),
        "status": booking.status,
        "expires_at": _iso(booking.expires_at),
        "amount": str(booking.amount),
        "currency": booking.currency,
        "reason": reason,
    }
