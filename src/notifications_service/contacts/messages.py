"""What the contacts replica consumes: `user.registered` and `user.updated`."""

from __future__ import annotations

from notifications_service.contacts.services import contact_upsert
from notifications_service.inbox.envelope import Envelope

CONSUMED_TYPES = ("user.registered", "user.updated")


def handle_event(envelope: Envelope) -> None:
    if envelope.type not in CONSUMED_TYPES:
        return
    data = envelope.data
    contact_upsert(
        user_id=str(data["user_id"]),
        name=str(data.get("name") or ""),
        email=str(data["email"]),
        role=str(data.get("role") or ""),
        occurred_at=envelope.occurred_at,
    )
