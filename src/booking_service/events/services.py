"""Events: creating one. Changing or canceling one reaches into its bookings and
inventory, so those are `booking_service.actions.events`."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from booking_service.events.messages import event_message
from booking_service.events.models import Event
from servicekit.errors import Unprocessable
from servicekit.messages import EventCreated
from servicekit.outbox.services import outbox_emit

MAX_ADVANCE = dt.timedelta(days=5 * 366)


def check_future(date: dt.date, time: dt.time) -> None:
    """A start in the future, at most five years ahead (422 otherwise)."""
    starts_at = dt.datetime.combine(date, time, tzinfo=dt.UTC)
    now = timezone.now()
    if starts_at <= now:
        raise Unprocessable("The event must start in the future.", code="event-in-past")
    if starts_at > now + MAX_ADVANCE:
        raise Unprocessable("Events start at most five years ahead.", code="too-far-ahead")


def event_create(
    *,
    organizer_id: uuid.UUID,
    name: str,
    date: dt.date,
    time: dt.time,
    location: str,
    total_tickets: int,
    price_per_ticket: Decimal,
    currency: str,
    description: str = "",
) -> Event:
    check_future(date, time)
    with transaction.atomic():
        event = Event.objects.create(
            organizer_id=organizer_id,
            name=name,
            description=description,
            date=date,
            time=time,
            location=location,
            total_tickets=total_tickets,
            available_tickets=total_tickets,
            price_per_ticket=price_per_ticket,
            currency=currency,
        )
        outbox_emit(event_message(EventCreated, event))
    return event
