from __future__ import annotations

from django.db.models import QuerySet

from booking_service.payments.models import Payment, PaymentStatus
from servicekit.actors import Actor


def payment_list(*, actor: Actor, booking_id: int | None = None) -> QuerySet[Payment]:
    payments = Payment.objects.all()
    if not actor.is_admin:
        payments = payments.filter(user_id=actor.id)
    if booking_id is not None:
        payments = payments.filter(booking_id=booking_id)
    return payments.order_by("-created_at", "-id")


def payment_get(*, payment_id: int, actor: Actor) -> Payment | None:
    return payment_list(actor=actor).filter(pk=payment_id).first()


def refundable_payment_ids(booking_ids: list[int]) -> list[int]:
    """The successful payments of these bookings: what their cancelation refunds."""
    return list(
        Payment.objects.filter(booking_id__in=booking_ids, status=PaymentStatus.SUCCESS)
        .order_by("id")
        .values_list("pk", flat=True)
    )
