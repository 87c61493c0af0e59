"""Pay for a booking. The provider is never called inside a database transaction:

1. a `pending` payment row is committed (at most one live payment per booking, so a
   booking is never charged twice at once);
2. the provider is asked, with no transaction open;
3. a new short transaction locks the booking and confirms it if it is still pending (so it
   still holds its inventory); otherwise the charge is refunded. A success that arrives late
   never confirms a booking whose tickets went back on sale.

When the provider cannot say what happened (a timeout, a network error, a 5xx) the charge
may have gone through: the payment stays `pending` and blocks any other payment of the
booking, and the sweeper asks the provider again with the same idempotency key until it
answers (`payments_resolve_stale`). A hold whose payment is pending is not released before
`PAYMENT_PENDING_HOLD_GRACE_SECONDS` past its expiry (`bookings.inventory.expired_holds`).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from django.db import IntegrityError, transaction
from django.utils import timezone

from booking_service.bookings.messages import booking_message
from booking_service.bookings.models import Booking, BookingStatus
from booking_service.payments.messages import payment_message
from booking_service.payments.models import Payment, PaymentStatus
from booking_service.payments.providers import ChargeResult, get_payment_provider
from booking_service.tickets.services import tickets_issue
from servicekit.errors import Conflict, NotFound, Unprocessable
from servicekit.messages import BookingConfirmed, PaymentFailed, PaymentRefunded, PaymentSucceeded
from servicekit.outbox.services import outbox_emit
from servicekit.workers import DATABASE_AWAY

logger = logging.getLogger(__name__)


class PaymentOutcome(StrEnum):
    CONFIRMED = "confirmed"
    FAILED = "failed"
    REFUNDED = "refunded"
    PENDING = "pending"  # the provider's answer is unknown; the sweeper settles it


@dataclass(frozen=True)
class PaymentResult:
    payment: Payment
    outcome: PaymentOutcome


def payment_create(
    *,
    booking_id: int,
    user_id: uuid.UUID,
    payment_token: str,
    amount: Decimal | None = None,
    on_created: Callable[[Payment], None] | None = None,
) -> PaymentResult:
    """Charge the booking. `on_created` runs in the transaction that commits the pending
    payment (the view records its Idempotency-Key's recovery point there)."""
    booking = (
        Booking.objects.select_related("event", "resource")
        .filter(pk=booking_id, user_id=user_id)
        .first()
    )
    if booking is None:
        raise NotFound("No such booking.", code="booking-not-found")
    in_progress = booking.payments.filter(status=PaymentStatus.PENDING).first()
    if in_progress is not None:
        raise _payment_in_progress(in_progress)
    if amount is not None and amount != booking.amount:
        raise Unprocessable(
            f"The amount is {booking.amount} {booking.currency}; the server computes it.",
            code="amount-mismatch",
            extra={"amount": str(booking.amount), "currency": booking.currency},
        )
    if booking.status == BookingStatus.CONFIRMED:
        raise Conflict("The booking is already paid.", code="already-paid")
    if booking.status == BookingStatus.CANCELED:
        raise Conflict("The booking is canceled.", code="booking-canceled")
    if booking.expires_at <= timezone.now():
        raise Conflict("The hold has expired; book again.", code="hold-expired")

    provider = get_payment_provider()
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                booking=booking,
                user_id=booking.user_id,
                amount=booking.amount,
                currency=booking.currency,
                status=PaymentStatus.PENDING,
                provider=provider.name,
                payment_token=payment_token,
            )
            if on_created is not None:
                on_created(payment)
    except IntegrityError as exc:
        live = booking.payments.filter(status=PaymentStatus.PENDING).first()
        if live is not None:
            raise _payment_in_progress(live) from exc
        raise Conflict("The booking is already paid.", code="already-paid") from exc

    return _payment_charge(payment)


def _payment_charge(payment: Payment) -> PaymentResult:
    """Ask the provider (with the payment's own idempotency key) and settle the answer."""
    try:
        result = get_payment_provider().charge(
            amount=payment.amount,
            currency=payment.currency,
            token=payment.payment_token,
            idempotency_key=str(payment.provider_idempotency_key),
        )
    except Exception:
        # Whatever went wrong, the charge may have gone through: never `failed` (a retry
        # would be a second charge), but `pending` until the provider answers the same key.
        logger.warning(
            "payment %s: the provider's answer is unknown; the sweeper asks again",
            payment.pk,
            exc_info=True,
        )
        return PaymentResult(payment, PaymentOutcome.PENDING)
    return _payment_settle(payment_id=payment.pk, result=result)


def payment_resume(*, payment_id: int) -> PaymentResult:
    """Where a payment request that left no answer got to (its process died, or it failed
    after the payment row committed): a settled payment's outcome, or, still pending, the
    provider asked again with the same key and the answer settled. Never a second charge."""
    payment = Payment.objects.select_related("booking").get(pk=payment_id)
    if payment.status == PaymentStatus.PENDING:
        return _payment_charge(payment)
    return PaymentResult(payment, _outcome_of(payment))


def _payment_in_progress(payment: Payment) -> Conflict:
    return Conflict(
        "A payment of this booking is in progress; poll it at "
        f"/api/payments/{payment.pk}/ until it is settled.",
        code="payment-in-progress",
        extra={"payment_id": payment.pk},
    )


def _outcome_of(payment: Payment) -> PaymentOutcome:
    if payment.status == PaymentStatus.FAILED:
        return PaymentOutcome.FAILED
    if (
        payment.status == PaymentStatus.SUCCESS
        and payment.booking.status == BookingStatus.CONFIRMED
    ):
        return PaymentOutcome.CONFIRMED
    return PaymentOutcome.REFUNDED


def _payment_settle(*, payment_id: int, result: ChargeResult) -> PaymentResult:
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("booking", "booking__event", "booking__resource")
            .get(pk=payment_id)
        )
        booking = (
            Booking.objects.select_for_update(of=("self",))
            .select_related("event", "resource")
            .get(pk=payment.booking.pk)
        )
        payment.booking = booking
        now = timezone.now()
        if payment.status != PaymentStatus.PENDING:
            # Settled meanwhile (the request and the stale-payment resolver both got here).
            return PaymentResult(payment, _outcome_of(payment))
        if not result.succeeded:
            payment.status = PaymentStatus.FAILED
            payment.failure_reason = result.failure_reason
            payment.retryable = result.retryable
            payment.save(update_fields=["status", "failure_reason", "retryable", "updated_at"])
            outbox_emit(payment_message(PaymentFailed, payment))
            return PaymentResult(payment, PaymentOutcome.FAILED)
        payment.status = PaymentStatus.SUCCESS
        payment.provider_reference = result.reference
        payment.save(update_fields=["status", "provider_reference", "updated_at"])
        # The booking must still be what was charged for: pending (so its inventory is still
        # held: a hold whose payment is pending is released only PAYMENT_PENDING_HOLD_GRACE
        # past its expiry, and then it is canceled), and at the amount paid (its ticket count
        # cannot change while a payment is live, but the price check makes a mismatch a
        # refund, never a confirmation at the wrong price).
        confirmable = (
            booking.status == BookingStatus.PENDING
            and payment.amount == booking.amount
            and payment.currency == booking.currency
        )
        if confirmable:
            booking.status = BookingStatus.CONFIRMED
            booking.confirmed_at = now
            booking.save(update_fields=["status", "confirmed_at", "updated_at"])
            tickets_issue(booking=booking)
            outbox_emit(payment_message(PaymentSucceeded, payment))
            outbox_emit(booking_message(BookingConfirmed, booking))
            return PaymentResult(payment, PaymentOutcome.CONFIRMED)
    # The hold ended (or the booking changed) while the provider was charging: give the
    # money back.
    reason = "hold_expired" if booking.amount == payment.amount else "amount_changed"
    refunded = payment_refund(payment_id=payment.pk, reason=reason)
    return PaymentResult(refunded, PaymentOutcome.REFUNDED)


def payment_refund(*, payment_id: int, reason: str) -> Payment:
    """Refund a successful payment. The provider is asked outside any transaction (with a
    stable idempotency key, so a retry after a crash refunds once); then the row is marked."""
    payment = Payment.objects.select_related("booking").get(pk=payment_id)
    if payment.status != PaymentStatus.SUCCESS:
        return payment
    provider = get_payment_provider()
    try:
        result = provider.refund(
            reference=payment.provider_reference,
            amount=payment.amount,
            currency=payment.currency,
            idempotency_key=f"refund-{payment.provider_idempotency_key}",
        )
    except Exception:
        # The change that asked for the refund has committed; the sweeper's orphan round
        # retries (payments_refund_orphaned), with the same idempotency key.
        logger.exception("payment provider failed to refund payment %s", payment.pk)
        return payment
    if not result.succeeded:
        logger.error("refund of payment %s failed: %s", payment.pk, result.failure_reason)
        return payment
    with transaction.atomic():
        payment = (
            Payment.objects.select_for_update(of=("self",))
            .select_related("booking", "booking__event", "booking__resource")
            .get(pk=payment_id)
        )
        if payment.status != PaymentStatus.SUCCESS:
            return payment
        payment.status = PaymentStatus.REFUNDED
        payment.refunded_at = timezone.now()
        payment.save(update_fields=["status", "refunded_at", "updated_at"])
        outbox_emit(payment_message(PaymentRefunded, payment, reason=reason))
    return payment


def payments_resolve_stale(*, older_than: dt.timedelta) -> int:
    """Settle payments left `pending` longer than `older_than`: the provider's answer was
    unknown (a timeout, a network error, a 5xx) or the process died while it was asked.

    The provider is asked again with the same idempotency key, so a charge that went through
    is reported, not repeated; then the payment settles as usual: success confirms the
    booking, or is refunded at once when the booking can no longer be confirmed (its hold was
    released, or it was canceled); a decline makes it `failed`. Each payment on its own: one
    the provider still cannot answer for, or one that fails to settle, is logged and asked
    again `older_than` later, while the others settle. The sweeper runs this; returns how
    many payments it asked about.
    """
    now = timezone.now()
    stale = list(
        Payment.objects.filter(
            status=PaymentStatus.PENDING, updated_at__lt=now - older_than
        ).order_by("updated_at", "id")[:100]
    )
    provider = get_payment_provider()
    for payment in stale:
        try:
            result = provider.charge(
                amount=payment.amount,
                currency=payment.currency,
                token=payment.payment_token,
                idempotency_key=str(payment.provider_idempotency_key),
            )
            _payment_settle(payment_id=payment.pk, result=result)
        except DATABASE_AWAY:
            raise  # no payment's fault: the round ends and the sweeper tries again
        except Exception:
            logger.warning(
                "payment %s stays pending (no answer from the provider, or settling failed); "
                "asking again later",
                payment.pk,
                exc_info=True,
            )
            # To the back of the queue, so it cannot starve the payments behind it.
            Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING).update(
                updated_at=now
            )
    return len(stale)


def payments_refund_orphaned() -> int:
    """Refund successful payments whose booking is canceled (a crash between a cancelation
    and its refund leaves one behind). The sweeper runs this."""
    ids = list(
        Payment.objects.filter(
            status=PaymentStatus.SUCCESS, booking__status=BookingStatus.CANCELED
        ).values_list("pk", flat=True)[:500]
    )
    for payment_id in ids:
        try:
            payment_refund(payment_id=payment_id, reason="booking_canceled")
        except Exception:
            logger.exception("refunding orphaned payment %s failed", payment_id)
    return len(ids)
