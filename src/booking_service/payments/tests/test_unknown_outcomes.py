"""A provider that cannot say what happened (a timeout, a network error, a 5xx): the payment
stays pending, nothing pays the booking twice, and the sweeper settles it."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from booking_service.actions.bookings import booking_cancel
from booking_service.actions.payments import PaymentOutcome, payment_create, payments_resolve_stale
from booking_service.actions.sweeper import release_expired_holds
from booking_service.bookings.inventory import event_inventory
from booking_service.bookings.models import Booking, BookingStatus, CancelReason
from booking_service.bookings.services import booking_create_tickets
from booking_service.events.models import Event
from booking_service.payments.models import Payment, PaymentStatus, SandboxLedgerEntry
from booking_service.payments.providers import (
    ChargeResult,
    PaymentOutcomeUnknown,
    SandboxPaymentProvider,
)
from booking_service.testing import make_event
from servicekit.actors import Actor
from servicekit.outbox.models import OutboxMessage
from servicekit.problems import Conflict

pytestmark = pytest.mark.django_db

NOW = dt.timedelta(0)  # the sweeper's delay, spent


def hold(tickets: int = 2, total: int = 10) -> tuple[Booking, uuid.UUID]:
    event = make_event(total_tickets=total, price="15.00")
    user = uuid.uuid4()
    return booking_create_tickets(user_id=user, event_id=event.pk, tickets_booked=tickets), user


def charges_of(booking: Booking) -> list[SandboxLedgerEntry]:
    """The money the gateway really took for this booking."""
    keys = [f"charge:{p.provider_idempotency_key}" for p in booking.payments.all()]
    return list(SandboxLedgerEntry.objects.filter(operation_key__in=keys, succeeded=True))


def refunds_of(booking: Booking) -> list[SandboxLedgerEntry]:
    keys = [f"refund:refund-{p.provider_idempotency_key}" for p in booking.payments.all()]
    return list(SandboxLedgerEntry.objects.filter(operation_key__in=keys, succeeded=True))


class UnreachableSandbox(SandboxPaymentProvider):
    """The gateway is down: every call fails before it reaches the bank."""

    error: type[Exception] = ConnectionError

    def charge(
        self, *, amount: Decimal, currency: str, token: str, idempotency_key: str
    ) -> ChargeResult:
        raise self.error("gateway unreachable")


class GatewayTimeout(UnreachableSandbox):
    error = TimeoutError


class Gateway5xx(UnreachableSandbox):
    error = PaymentOutcomeUnknown


@pytest.mark.parametrize("provider", ["UnreachableSandbox", "GatewayTimeout", "Gateway5xx"])
def test_an_unknown_outcome_leaves_the_payment_pending(settings: Any, provider: str) -> None:
    settings.PAYMENT_PROVIDER = f"{__name__}.{provider}"
    booking, user = hold()
    result = payment_create(booking_id=booking.pk, user_id=user, payment_token="tok_visa")
    assert result.outcome == PaymentOutcome.PENDING
    payment = Payment.objects.get()
    assert (payment.status, payment.failure_reason) == (PaymentStatus.PENDING, "")
    booking.refresh_from_db()
    assert booking.status == BookingStatus.PENDING
    assert not OutboxMessage.objects.filter(type__startswith="payment.").exists()
    # The customer's retry is refused: the first charge may have gone through.
    settings.PAYMENT_PROVIDER = "booking_service.payments.providers.SandboxPaymentProvider"
    with pytest.raises(Conflict) as refused:
        payment_create(booking_id=booking.pk, user_id=user, payment_token="tok_visa")
    assert refused.value.problem_code == "payment-in-progress"
    assert Payment.objects.count() == 1


def test_charge_then_timeout_is_charged_once_and_the_sweeper_confirms() -> None:
    booking, user = hold()
    first = payment_create(
        booking_id=booking.pk, user_id=user, payment_token="tok_chargeThenTimeout"
    )
    assert (first.outcome, first.payment.status) == (PaymentOutcome.PENDING, "pending")
    assert len(charges_of(booking)) == 1  # the gateway took the money; nobody heard
    for token in ("tok_chargeThenTimeout", "tok_visa"):
        with pytest.raises(Conflict) as refused:
            payment_create(booking_id=booking.pk, user_id=user, payment_token=token)
        assert refused.value.problem_code == "payment-in-progress"
    # Not before the delay: the first request may still be waiting for its answer.
    assert payments_resolve_stale(older_than=dt.timedelta(minutes=1)) == 0
    assert payments_resolve_stale(older_than=NOW) == 1
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.SUCCESS
    assert payment.provider_reference == charges_of(booking)[0].reference
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CONFIRMED
    assert len(charges_of(booking)) == 1
    assert refunds_of(booking) == []
    assert OutboxMessage.objects.filter(type="payment.succeeded").count() == 1
    assert OutboxMessage.objects.filter(type="booking.confirmed").count() == 1
    assert payments_resolve_stale(older_than=NOW) == 0
    with pytest.raises(Conflict) as paid:
        payment_create(booking_id=booking.pk, user_id=user, payment_token="tok_visa")
    assert paid.value.problem_code == "already-paid"


def test_a_hold_whose_payment_is_pending_is_kept_until_its_grace_ends() -> None:
    booking, user = hold(tickets=2, total=2)
    payment_create(booking_id=booking.pk, user_id=user, payment_token="tok_chargeThenTimeout")
    Booking.objects.filter(pk=booking.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert release_expired_holds() == 0
    # Nobody else gets the tickets meanwhile (the lazy release keeps it too).
    with pytest.raises(Conflict) as sold_out:
        booking_create_tickets(
            user_id=uuid.uuid4(), event_id=booking.event_id or 0, tickets_booked=1
        )
    assert sold_out.value.problem_code == "sold-out"
    # The charge went through: the sweeper confirms the booking, past its expiry.
    payments_resolve_stale(older_than=NOW)
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CONFIRMED
    inventory = event_inventory(event_id=booking.event_id or 0)
    assert inventory is not None
    assert (inventory.available, inventory.sold) == (0, 2)


def test_charge_then_timeout_after_the_hold_was_released_is_refunded_at_once() -> None:
    booking, user = hold(tickets=2, total=2)
    payment_create(booking_id=booking.pk, user_id=user, payment_token="tok_chargeThenTimeout")
    grace = dt.timedelta(seconds=settings.PAYMENT_PENDING_HOLD_GRACE_SECONDS)
    Booking.objects.filter(pk=booking.pk).update(
        expires_at=timezone.now() - grace - dt.timedelta(seconds=1)
    )
    assert release_expired_holds() == 1  # the grace is a bound: the tickets go back on sale
    booking.refresh_from_db()
    assert (booking.status, booking.cancel_reason) == (BookingStatus.CANCELED, "expired")
    assert Event.objects.get(pk=booking.event_id or 0).available_tickets == 2
    payments_resolve_stale(older_than=NOW)
    payment = Payment.objects.get()
    assert payment.status == PaymentStatus.REFUNDED
    assert len(charges_of(booking)) == 1
    assert len(refunds_of(booking)) == 1
    assert OutboxMessage.objects.get(type="payment.refunded").data["reason"] == "hold_expired"
    assert not OutboxMessage.objects.filter(type="booking.confirmed").exists()


def test_a_booking_canceled_while_its_payment_was_pending_is_refunded() -> None:
    booking, user = hold()
    payment_create(booking_id=booking.pk, user_id=user, payment_token="tok_chargeThenTimeout")
    booking_cancel(booking_id=booking.pk, actor=Actor(id=user))
    payments_resolve_stale(older_than=NOW)
    assert Payment.objects.get().status == PaymentStatus.REFUNDED
    booking.refresh_from_db()
    assert (booking.status, booking.cancel_reason) == (BookingStatus.CANCELED, CancelReason.USER)
    assert (len(charges_of(booking)), len(refunds_of(booking))) == (1, 1)


def test_a_pending_payment_the_provider_declines_becomes_failed(settings: Any) -> None:
    booking, user = hold()
    settings.PAYMENT_PROVIDER = f"{__name__}.GatewayTimeout"
    payment_create(booking_id=booking.pk, user_id=user, payment_token="tok_chargeDeclined")
    settings.PAYMENT_PROVIDER = "booking_service.payments.providers.SandboxPaymentProvider"
    payments_resolve_stale(older_than=NOW)
    payment = Payment.objects.get()
    assert (payment.status, payment.failure_reason) == (PaymentStatus.FAILED, "card_declined")
    booking.refresh_from_db()
    assert booking.status == BookingStatus.PENDING
    # Settled: the customer may pay again.
    retry = payment_create(booking_id=booking.pk, user_id=user, payment_token="tok_visa")
    assert retry.outcome == PaymentOutcome.CONFIRMED


class FlakySandbox(SandboxPaymentProvider):
    """Still cannot answer for one token; answers the others."""

    def charge(
        self, *, amount: Decimal, currency: str, token: str, idempotency_key: str
    ) -> ChargeResult:
        if token == "tok_stuck":
            raise PaymentOutcomeUnknown("gateway answered 503")
        return super().charge(
            amount=amount, currency=currency, token=token, idempotency_key=idempotency_key
        )


def test_the_sweeper_settles_each_payment_on_its_own(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.PAYMENT_PROVIDER = f"{__name__}.FlakySandbox"
    stuck, stuck_user = hold()
    fine, fine_user = hold()
    payment_create(booking_id=stuck.pk, user_id=stuck_user, payment_token="tok_stuck")
    payment_create(booking_id=fine.pk, user_id=fine_user, payment_token="tok_chargeThenTimeout")
    # The stuck one is older, so it is asked first.
    Payment.objects.filter(booking=stuck).update(
        updated_at=timezone.now() - dt.timedelta(minutes=2)
    )
    with caplog.at_level(logging.WARNING):
        assert payments_resolve_stale(older_than=NOW) == 2
    assert Payment.objects.get(booking=fine).status == PaymentStatus.SUCCESS
    stuck_payment = Payment.objects.get(booking=stuck)
    assert stuck_payment.status == PaymentStatus.PENDING
    assert f"payment {stuck_payment.pk} stays pending" in caplog.text
    # It goes to the back of the queue and is asked again after the delay.
    assert payments_resolve_stale(older_than=dt.timedelta(seconds=30)) == 0
    settings.PAYMENT_PROVIDER = "booking_service.payments.providers.SandboxPaymentProvider"
    Payment.objects.filter(booking=stuck).update(payment_token="tok_visa")
    assert payments_resolve_stale(older_than=NOW) == 1
    assert Payment.objects.get(booking=stuck).status == PaymentStatus.SUCCESS


class SlowAnswerSandbox(SandboxPaymentProvider):
    """The gateway charges at once but its answer to the first caller arrives only when the
    test lets it (a slow network); anyone else asking gets the answer straight away."""

    charged = threading.Event()
    answer = threading.Event()

    def charge(
        self, *, amount: Decimal, currency: str, token: str, idempotency_key: str
    ) -> ChargeResult:
        result = super().charge(
            amount=amount, currency=currency, token=token, idempotency_key=idempotency_key
        )
        if threading.current_thread() is not threading.main_thread():
            self.charged.set()
            self.answer.wait(10)
        return result


@pytest.mark.django_db(transaction=True)
def test_the_request_and_the_sweeper_settle_one_payment_once(settings: Any) -> None:
    settings.PAYMENT_PROVIDER = f"{__name__}.SlowAnswerSandbox"
    SlowAnswerSandbox.charged.clear()
    SlowAnswerSandbox.answer.clear()
    booking, user = hold()
    outcomes: list[PaymentOutcome] = []

    def pay() -> None:
        try:
            result = payment_create(booking_id=booking.pk, user_id=user, payment_token="tok_visa")
            outcomes.append(result.outcome)
        finally:
            connection.close()

    request = threading.Thread(target=pay)
    request.start()
    assert SlowAnswerSandbox.charged.wait(10)
    # The request is still waiting for its answer; the sweeper asks the same key meanwhile.
    assert payments_resolve_stale(older_than=NOW) == 1
    SlowAnswerSandbox.answer.set()
    request.join(10)
    assert outcomes == [PaymentOutcome.CONFIRMED]
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CONFIRMED
    assert Payment.objects.get().status == PaymentStatus.SUCCESS
    assert len(charges_of(booking)) == 1
    assert OutboxMessage.objects.filter(type="payment.succeeded").count() == 1
    assert OutboxMessage.objects.filter(type="booking.confirmed").count() == 1
