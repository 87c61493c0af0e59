"""What the bookings app publishes (through the outbox): the `booking.*` messages of
`servicekit.messages`. The message carries everything a notification needs, so consumers
never call back."""

from __future__ import annotations

import uuid
from typing import TypeVar

from booking_service.bookings.models import Booking
from servicekit.messages import BookingMessage

BookingMessageT = TypeVar("BookingMessageT", bound=BookingMessage)


def booking_message(
    model: type[BookingMessageT], booking: Booking, *, reason: str | None = None
) -> BookingMessageT:
    """`model` (`BookingCreated`, `BookingCanceled`, ...) describing `booking` as it stands."""
    event = booking.event
    resource = booking.resource
    return model(
        booking_id=booking.pk,
        user_id=uuid.UUID(str(booking.user_id)),
        organizer_id=booking.organizer_id,
        kind=booking.kind,
        event_id=event.pk if event is not None else None,
        event_name=event.name if event is not None else None,
        resource_id=resource.pk if resource is not None else None,
        resource_name=resource.name if resource is not None else None,
        tickets_booked=booking.tickets_booked,
        start_time=booking.start_time,
        end_time=booking.end_time,
        status=booking.status,
        expires_at=booking.expires_at,
        amount=booking.amount,
        currency=booking.currency,
        reason=reason,
    )
