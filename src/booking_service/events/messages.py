"""What the events app publishes (through the outbox)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from booking_service.events.models import Event

EVENT_CREATED = "event.created"
EVENT_UPDATED = "event.updated"
EVENT_CANCELED = "event.canceled"


def event_data(event: Event, *, affected_user_ids: Iterable[str] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "event_id": event.pk,
        "organizer_id": str(event.organizer_id),
        "name": event.name,
        "date": event.date.isoformat(),
        "time": event.time.isoformat(),
        "location": event.location,
        "total_tickets": event.total_tickets,
        "available_tickets": event.available_tickets,
        "price_per_ticket": str(event.price_per_ticket),
        "currency": event.currency,
        "status": event.status,
    }
    if affected_user_ids is not None:
        data["affected_user_ids"] = sorted(set(affected_user_ids))
    return data
