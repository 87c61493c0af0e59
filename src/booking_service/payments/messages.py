"""What the payments app publishes (through the outbox): the `payment.*` messages of
`servicekit.messages`."""

from __future__ import annotations

import uuid
from typing import TypeVar

from booking_service.payments.models import Payment
from servicekit.messages import PaymentMessage

PaymentMessageT = TypeVar("PaymentMessageT", bound=PaymentMessage)


def payment_message(
    model: type[PaymentMessageT], payment: Payment, *, reason: str | None = None
) -> PaymentMessageT:
    """`model` (`PaymentSucceeded`, ...) describing `payment`; `reason` defaults to its
    failure reason, if any."""
    booking = payment.booking
    return model(
        payment_id=payment.pk,
        booking_id=booking.pk,
        user_id=uuid.UUID(str(payment.user_id)),
        organizer_id=booking.organizer_id,
        amount=payment.amount,
        currency=payment.currency,
        status=payment.status,
        reason=reason if reason is not None else (payment.failure_reason or None),
        event_name=booking.event.name if booking.event is not None else None,
        resource_name=booking.resource.name if booking.resource is not None else None,
    )
