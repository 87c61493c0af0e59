"""Organizer webhooks: every message about an organizer's events, bookings and payments.

A webhook carries the envelope with `data` encoded from the model: what the AsyncAPI document
describes, whichever producer version sent it.
"""

from __future__ import annotations

from notifications_service.webhooks.services import WEBHOOK_EVENT_TYPES, webhook_deliveries_enqueue
from servicekit.messages import (
    BookingMessage,
    EventMessage,
    IncomingEnvelope,
    PaymentMessage,
    message_to_builtins,
)

SUBSCRIBED = ("event.>", "booking.>", "payment.>")


def handle_message(envelope: IncomingEnvelope) -> None:
    message = envelope.data
    if envelope.type not in WEBHOOK_EVENT_TYPES or not isinstance(
        message, EventMessage | BookingMessage | PaymentMessage
    ):
        return
    webhook_deliveries_enqueue(
        organizer_id=str(message.organizer_id),
        message_id=envelope.id,
        message_type=envelope.type,
        envelope={
            "id": str(envelope.id),
            "type": envelope.type,
            "occurred_at": envelope.occurred_at.isoformat(),
            "producer": envelope.producer,
            "version": envelope.version,
            "data": {
                key: value
                for key, value in message_to_builtins(message).items()
                if key != "affected_user_ids"
            },
        },
    )
