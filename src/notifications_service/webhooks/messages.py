"""Organizer webhooks: every event about an organizer's events, bookings and payments."""

from __future__ import annotations

from notifications_service.inbox.envelope import Envelope
from notifications_service.webhooks.services import WEBHOOK_EVENT_TYPES, webhook_deliveries_enqueue

SUBSCRIBED = ("event.>", "booking.>", "payment.>")


def handle_event(envelope: Envelope) -> None:
    organizer_id = envelope.data.get("organizer_id")
    if envelope.type not in WEBHOOK_EVENT_TYPES or not organizer_id:
        return
    webhook_deliveries_enqueue(
        organizer_id=str(organizer_id),
        event_id=envelope.id,
        event_type=envelope.type,
        envelope={
            "id": str(envelope.id),
            "type": envelope.type,
            "occurred_at": envelope.occurred_at.isoformat(),
            "producer": envelope.producer,
            "version": envelope.version,
            "data": {k: v for k, v in envelope.data.items() if k != "affected_user_ids"},
        },
    )
