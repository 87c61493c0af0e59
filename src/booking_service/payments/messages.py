"""What the payments app publishes (through the outbox)."""

from __future__ import annotations

from typing import Any

from booking_service.bookings.events import booking_organizer_id
from booking_service.payments.models import Payment

PAYMENT_SUCCEEDED = "payment.succeeded"
PAYMENT_FAILED = "payment.failed"
PAYMENT_REFUNDED = "payment.refunded"


def payment_data(payment: Payment, *, reason: str | None = None) -> dict[str, Any]:
    booking = payment.booking
    return {
        "payment_id": payment.pk,
        "booking_id": booking.pk,
        "user_id": str(payment.user_id),
        "organizer_id": booking_organizer_id(booking),
        "amount": str(payment.amount),
        "currency": payment.currency,
        "status": payment.status,
        "reason": reason if reason is not None else (payment.failure_reason or None),
        "event_name": booking.event.name if booking.event is not None else None,
        "resource_name": booking.resource.name if booking.resource is not None else None,
    }
