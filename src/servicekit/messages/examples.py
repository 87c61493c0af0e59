"""One example of each message: for the AsyncAPI document, the benchmark and tests that need a
complete payload. Fixed values, so the generated document does not change between runs."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from servicekit.messages.envelope import message_to_builtins
from servicekit.messages.models import (
    MESSAGE_MODELS,
    BookingMessage,
    EventMessage,
    Message,
    PaymentMessage,
    UserMessage,
)

USER_ID = uuid.UUID("6f1c2a8e-3b1d-4c55-9a51-0d7f1e9b2c41")
ORGANIZER_ID = uuid.UUID("b2e4d6f8-1a3c-4e5b-8d7f-9a1b2c3d4e5f")
_AT = dt.datetime(2030, 6, 1, 18, 30, tzinfo=dt.UTC)


def _fields(model: type[Message]) -> dict[str, Any]:
    if issubclass(model, UserMessage):
        return {"user_id": USER_ID, "name": "Ada", "email": "ada@example.com", "role": "customer"}
    if issubclass(model, EventMessage):
        fields: dict[str, Any] = {
            "event_id": 42,
            "organizer_id": ORGANIZER_ID,
            "name": "Jazz night",
            "date": dt.date(2030, 6, 21),
            "time": dt.time(20, 0),
            "location": "Turnstile Hall",
            "total_tickets": 200,
            "available_tickets": 180,
            "price_per_ticket": Decimal("18.75"),
            "currency": "EUR",
            "status": "canceled" if model.TYPE == "event.canceled" else "active",
        }
        if model.TYPE == "event.canceled":
            fields["affected_user_ids"] = [USER_ID]
        return fields
    if issubclass(model, BookingMessage):
        status, reason = {
            "booking.created": ("pending", None),
            "booking.confirmed": ("confirmed", None),
            "booking.canceled": ("canceled", "user"),
            "booking.expired": ("canceled", "expired"),
        }[model.TYPE]
        return {
            "booking_id": 1001,
            "user_id": USER_ID,
            "organizer_id": ORGANIZER_ID,
            "kind": "tickets",
            "event_id": 42,
            "event_name": "Jazz night",
            "resource_id": None,
            "resource_name": None,
            "tickets_booked": 2,
            "start_time": None,
            "end_time": None,
            "status": status,
            "expires_at": _AT + dt.timedelta(minutes=15),
            "amount": Decimal("37.50"),
            "currency": "EUR",
            "reason": reason,
        }
    if issubclass(model, PaymentMessage):
        status, reason = {
            "payment.succeeded": ("success", None),
            "payment.failed": ("failed", "card_declined"),
            "payment.refunded": ("refunded", "user"),
        }[model.TYPE]
        return {
            "payment_id": 501,
            "booking_id": 1001,
            "user_id": USER_ID,
            "organizer_id": ORGANIZER_ID,
            "amount": Decimal("37.50"),
            "currency": "EUR",
            "status": status,
            "reason": reason,
            "event_name": "Jazz night",
            "resource_name": None,
        }
    raise LookupError(f"no example for {model.TYPE}")


EXAMPLES: dict[str, Message] = {model.TYPE: model(**_fields(model)) for model in MESSAGE_MODELS}


def example_data(message_type: str, **fields: Any) -> dict[str, Any]:
    """The example of `message_type` as JSON-ready data, with `fields` (JSON values) put over
    it: a complete payload a test changes only where it matters."""
    return {**message_to_builtins(EXAMPLES[message_type]), **fields}
