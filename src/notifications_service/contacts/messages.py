"""What the contacts replica consumes: `user.registered` and `user.updated`."""

from __future__ import annotations

from notifications_service.contacts.services import contact_upsert
from servicekit.messages import IncomingEnvelope, UserMessage

CONSUMED_TYPES = ("user.registered", "user.updated")


def handle_message(envelope: IncomingEnvelope) -> None:
    message = envelope.data
    if envelope.type not in CONSUMED_TYPES or not isinstance(message, UserMessage):
        return
    contact_upsert(
        user_id=str(message.user_id),
        name=message.name,
        email=message.email,
        role=message.role,
        occurred_at=envelope.occurred_at,
    )
