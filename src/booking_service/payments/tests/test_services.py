from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from booking_service.actions.bookings import booking_cancel
from booking_service.actions.payments import (
    PaymentOutcome,
    payment_create,
    payments_refund_orphaned,
    payments_resolve_stale,
)
from booking_service.actions.sweeper import release_expired_holds
from booking_service.bookings.inventory import event_inventory
from booking_service.bookings.models import Booking, BookingStatus
from booking_service.bookings.services import booking_create_tickets, booking_update_tickets
from booking_service.payments.models import Payment, PaymentStatus
from booking_service.payments.providers import ChargeResult, RefundResult, SandboxPaymentProvider
from booking_service.testing import make_event
from servicekit.actors import Actor
from servicekit.outbox.models import OutboxMessage
from servicekit.problems import Conflict, NotFound, Unprocessable

pytestmark = pytest.mark.django_db


def past_the_grace() -> dt.datetime:
    """An expiry so long ago that even a hold whose payment is pending is released."""
    return timezone.now() - dt.timedelta(seconds=settings.PAYMENT_PENDING_HOLD_GRACE_SECONDS + 1)


class ExpiringSandbox(SandboxPaymentProvider):
    """Charges succeed, but only after the hold has run out and was released (a gateway
    slower than the hold and its grace)."""

    in_transaction: ClassVar[list[bool]] = []

    def charge(
        self, *, amount: Decimal, currency: str, token: str, idempotency_key: str
    ) -> ChargeResult:
        Booking.objects.update(expires_at=past_the_grace())
        release_expired_holds()
        return super().charge(
            amount=amount, currency=currency, token=token, idempotency_key=idempotency_key
        )


class RecordingSandbox(SandboxPaymentProvider):
    """Records whether a transaction with row locks was open when the gateway was called."""

    atomic_depths: ClassVar[list[int]] = []

    def charge(
        self, *, amount: Decimal, currency: str, token: str, idempotency_key: str
    ) -> ChargeResult:
        self.atomic_depths.append(len(connection.savepoint_ids))
        return super().charge(
            amount=amount, currency=currency, token=token, idempotency_key=idempotency_key
        )

    def refund(
        self, *, reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundResult:
        self.atomic_depths.append(len(connection.savepoint_ids))
        return super().refund(
            reference=reference, amount=amount, currency=currency, idempotency_key=idempotency_key
        )


def hold(tickets: int = 2, total: int = 10) -> tuple[Booking, uuid.UUID]:
    event = make_event(total_tickets=total, price="15.00")
    user = uuid.uuid4()
    return booking_create_tickets(user_id=user, event_id=event.pk, tickets_booked=tickets), user


def test_successful_payment_confirms_the_booking_and_publishes() -> None:
    booking, user = hold()
    result = payment_create(booking_id=booking.pk, user_id=user, payment_token="tok_visa")
    assert result.outcome == PaymentOutcome.CONFIRMED
    assert result.payment.status == PaymentStatus.SUCCESS
    assert result.payment.amount == Decimal("30.00")
    assert result.payment.provider_reference.startswith("sbx_ch_")
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CONFIRMED
    succeeded = OutboxMessage.objects.get(type="payment.succeeded")
    assert succeeded.data["booking_id"] == booking.pk
    assert succeeded.data["amount"] == "30.00"
    assert succeeded.data["event_name"] == "Concert"
    assert OutboxMessage.objects.get(type="booking.confirmed").data["status"] == "confirmed"
    inventory = event_inventory(event_id=booking.event_id or 0)
    assert inventory is not None
    assert inventory.sold == 2
    with pytest.raises(Conflict):
        payment_create(booking_id=booking.pk, user_id=user, payment_token="tok_visa")


@pytest.mark.parametrize(
    ("token", "reason", "retryable"),
    [
        ("tok_chargeDeclined", "card_declined", False),
        ("tok_chargeDeclinedInsufficientFunds", "insufficient_funds", False),
        ("tok_processingError", "processing_error", True),
        ("tok_unknown", "invalid_token", False),
    ],
)
def test_failed_payment_leaves_the_booking_pending(
    token: str, reason: str, retryable: bool
) -> None:
    booking, user = hold()
    result = payment_create(booking_id=booking.pk, user_id=user, payment_token=token)
    assert result.outcome == PaymentOutcome.FAILED
    assert (result.payment.status, result.payment.failure_reason) == ("failed", reason)
    assert result.payment.retryable is retryable
    booking.refresh_from_db()
    assert booking.status == BookingStatus.PENDING
    assert OutboxMessage.objects.get(type="payment.failed").data["reason"] == reason
    # A later attempt may still succeed.
    retry = payment_create(booking_id=booking.pk, user_id=user, payment_token="tok_visa")
    assert retry.outcome == PaymentOutcome.CONFIRMED


def test_only_the_owner_may_pay_and_the_server_computes_the_amount() -> None:
    booking, user = hold()
    with pytest.raises(NotFound):
        payment_create(booking_id=booking.pk, user_id=uuid.uuid4(), payment_token="tok_visa")
    with pytest.raises(Unprocessable):
        payment_create(
            booking_id=booking.pk, user_id=user, payment_token="tok_visa", amount=Decimal("1.00")
        )
    assert not Payment.objects.exists()
    result = payment_create(
        booking_id=booking.pk, user_id=user, payment_token="tok_visa", amount=Decimal("30.00")
    )
    assert result.outcome == PaymentOutcome.CONFIRMED


def test_an_expired_hold_cannot_be_paid() -> None:
    booking, user = hold()
    Booking.objects.filter(pk=booking.pk).update(expires_at=timezone.now())
    with pytest.raises(Conflict) as excinfo:
        payment_create(booking_id=booking.pk, user_id=user, payment_token="tok_visa")
    assert excinfo.value.problem_code == "hold-expired"
    assert not Payment.objects.exists()


def test_success_after_the_hold_expired_is_refunded_never_confirmed(settings: Any) -> None:
    settings.PAYMENT_PROVIDER = f"{__name__}.ExpiringSandbox"
    booking, user = hold(tickets=2, total=2)
    result = payment_create(booking_id=booking.pk, user_id=user, payment_token="tok_visa")
    assert result.outcome == PaymentOutcome.REFUNDED
    assert result.payment.status == PaymentStatus.REFUNDED
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELED
    assert OutboxMessage.objects.get(type="payment.refunded").data["reason"] == "hold_expired"
    assert not OutboxMessage.objects.filter(type="booking.confirmed").exists()
    inventory = event_inventory(event_id=booking.event_id or 0)
    assert inventory is not None
    assert (inventory.available, inventory.sold) == (2, 0)


def test_cancel_after_pay_refunds(settings: Any) -> None:
    settings.PAYMENT_PROVIDER = f"{__name__}.RecordingSandbox"
    RecordingSandbox.atomic_depths.clear()
    booking, user = hold()
    payment_create(booking_id=booking.pk, user_id=user, payment_token="tok_visa")
    booking_cancel(booking_id=booking.pk, actor=Actor(id=user))
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.REFUNDED
    assert payment.refunded_at is not None
    message = OutboxMessage.objects.get(type="payment.refunded")
    assert message.data["reason"] == "booking_canceled"
    assert message.data["status"] == "refunded"
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELED
    # pytest-django's test transaction is the only one open when the gateway is called.
    assert RecordingSandbox.atomic_depths == [0, 0]


def test_sweeper_refunds_payments_of_canceled_bookings() -> None:
    booking, user = hold()
    payment_create(booking_id=booking.pk, user_id=user, payment_token="tok_visa")
    # A crash between a cancelation and its refund.
    Booking.objects.filter(pk=booking.pk).update(status=BookingStatus.CANCELED)
    assert payments_refund_orphaned() == 1
    assert Payment.objects.get().status == PaymentStatus.REFUNDED
    assert payments_refund_orphaned() == 0


def _crashed_payment(booking: Booking) -> Payment:
    """What a process leaves behind when it dies while the provider is being asked."""
    payment = Payment.objects.create(
        booking=booking,
        user_id=booking.user_id,
        amount=booking.amount,
        currency=booking.currency,
        status=PaymentStatus.PENDING,
        provider="sandbox",
        payment_token="tok_visa",
    )
    Payment.objects.filter(pk=payment.pk).update(
        updated_at=timezone.now() - dt.timedelta(minutes=10)
    )
    return payment


def test_sweeper_settles_a_payment_left_pending_by_a_crash() -> None:
    booking, user = hold()
    payment = _crashed_payment(booking)
    # While it is pending nobody else can pay the booking.
    with pytest.raises(Conflict):
        payment_create(booking_id=booking.pk, user_id=user, payment_token="tok_visa")
    assert payments_resolve_stale(older_than=dt.timedelta(minutes=2)) == 1
    payment.refresh_from_db()
    booking.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCESS
    assert booking.status == BookingStatus.CONFIRMED
    assert payments_resolve_stale(older_than=dt.timedelta(minutes=2)) == 0


def test_stale_payment_of_an_expired_hold_is_refunded() -> None:
    booking, _ = hold()
    payment = _crashed_payment(booking)
    Booking.objects.filter(pk=booking.pk).update(expires_at=past_the_grace())
    assert release_expired_holds() == 1
    payments_resolve_stale(older_than=dt.timedelta(minutes=2))
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.REFUNDED
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELED


def test_recent_pending_payments_are_left_alone() -> None:
    booking, _ = hold()
    payment = _crashed_payment(booking)
    Payment.objects.filter(pk=payment.pk).update(updated_at=timezone.now())
    assert payments_resolve_stale(older_than=dt.timedelta(minutes=2)) == 0


class ResizingSandbox(SandboxPaymentProvider):
    """While the gateway charges, the booking's amount changes underneath (as a concurrent
    ticket-count change that slipped past its guard would do)."""

    def charge(
        self, *, amount: Decimal, currency: str, token: str, idempotency_key: str
    ) -> ChargeResult:
        Booking.objects.update(tickets_booked=10, amount=Decimal("150.00"))
        return super().charge(
            amount=amount, currency=currency, token=token, idempotency_key=idempotency_key
        )


def test_a_charge_for_another_amount_never_confirms(settings: Any) -> None:
    settings.PAYMENT_PROVIDER = f"{__name__}.ResizingSandbox"
    booking, user = hold(tickets=1)
    result = payment_create(booking_id=booking.pk, user_id=user, payment_token="tok_visa")
    assert result.outcome == PaymentOutcome.REFUNDED
    booking.refresh_from_db()
    assert booking.status == BookingStatus.PENDING
    assert OutboxMessage.objects.get(type="payment.refunded").data["reason"] == "amount_changed"
    assert not OutboxMessage.objects.filter(type="booking.confirmed").exists()


def test_ticket_count_cannot_change_while_a_payment_is_live() -> None:
    booking, user = hold(tickets=1)
    _crashed_payment(booking)  # a pending payment: the gateway is being asked
    with pytest.raises(Conflict) as raised:
        booking_update_tickets(booking_id=booking.pk, actor=Actor(id=user), tickets_booked=5)
    assert raised.value.problem_code == "payment-in-progress"
    booking.refresh_from_db()
    assert (booking.tickets_booked, booking.amount) == (1, Decimal("15.00"))


class RefundOutageSandbox(SandboxPaymentProvider):
    def refund(
        self, *, reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundResult:
        raise ConnectionError("gateway unreachable")


def test_a_refund_outage_does_not_fail_the_cancelation(settings: Any) -> None:
    booking, user = hold()
    payment_create(booking_id=booking.pk, user_id=user, payment_token="tok_visa")
    settings.PAYMENT_PROVIDER = f"{__name__}.RefundOutageSandbox"
    canceled = booking_cancel(booking_id=booking.pk, actor=Actor(id=user))
    assert canceled.status == BookingStatus.CANCELED
    assert Payment.objects.get().status == PaymentStatus.SUCCESS  # not refunded yet
    assert payments_refund_orphaned() == 1  # the sweeper survives the outage too
    settings.PAYMENT_PROVIDER = "booking_service.payments.providers.SandboxPaymentProvider"
    payments_refund_orphaned()
    assert Payment.objects.get().status == PaymentStatus.REFUNDED
