"""What the events app publishes (through the outbox): the `event.*` messages of
`servicekit.messages` (an event here is a concert or any ticketed event)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, TypeVar

from booking_service.events.models import Event
from servicekit.messages import EventCanceled, EventMessage

EventMessageT = TypeVar("EventMessageT", bound=EventMessage)


def _fields(event: Event) -> dict[str, Any]:
    return {
        "event_id": event.pk,
        "organizer_id": uuid.UUID(str(event.organizer_id)),
        "name": event.name,
        "date": event.date,
        "time": event.time,
        "location": event.location,
        "total_tickets": event.total_tickets,
        "available_tickets": event.available_tickets,
        "price_per_ticket": event.price_per_ticket,
        "currency": event.currency,
        "status": event.status,
    }


def event_message(model: type[EventMessageT], event: Event) -> EventMessageT:
    """`model` (`EventCreated` or `EventUpdated`) describing `event`."""
    return model(**_fields(event))


def event_canceled_message(event: Event, *, affected_user_ids: Iterable[str]) -> EventCanceled:
    """`event.canceled`, naming every holder of an active booking once."""
    holders = sorted({uuid.UUID(str(user_id)) for user_id in affected_user_ids})
    return EventCanceled(**_fields(event), affected_user_ids=holders)
