"""Cancelation by the customer, an admin, or with the event."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from booking_service.bookings.locking import lock_event
from booking_service.bookings.messages import booking_message
from booking_service.bookings.models import ACTIVE_STATUSES, Booking, BookingStatus, CancelReason
from booking_service.bookings.services.common import Actor, get_own_booking, relock_booking
from booking_service.events.models import Event
from servicekit.messages import BookingCanceled
from servicekit.outbox.services import outbox_emit_many
from servicekit.problems import Conflict


def _cancel_locked(bookings: Sequence[Booking], *, reason: str, now: dt.datetime) -> list[int]:
    """Mark locked active bookings canceled and emit `booking.canceled`; the caller returns
    ticket inventory. Returns the ids of successful payments to refund after commit."""
    from booking_service.payments.models import Payment, PaymentStatus

    ids = [booking.pk for booking in bookings]
    Booking.objects.filter(pk__in=ids).update(
        status=BookingStatus.CANCELED, cancel_reason=reason, canceled_at=now, updated_at=now
    )
    for booking in bookings:
        booking.status = BookingStatus.CANCELED
        booking.cancel_reason = reason
        booking.canceled_at = now
    outbox_emit_many(
        [booking_message(BookingCanceled, booking, reason=reason) for booking in bookings]
    )
    return list(
        Payment.objects.filter(booking_id__in=ids, status=PaymentStatus.SUCCESS).values_list(
            "pk", flat=True
        )
    )


def _starts_at(booking: Booking) -> dt.datetime | None:
    if booking.event is not None:
        return booking.event.starts_at
    return booking.start_time


def _check_refundable(booking: Booking, *, actor: Actor, now: dt.datetime) -> None:
    """A customer cancels a confirmed (paid) booking only up to the refund cutoff before its
    event or slot starts; once it has taken place there is nothing left to give back. An
    admin may still cancel (and refund) it."""
    starts_at = _starts_at(booking)
    if actor.is_admin or booking.status != BookingStatus.CONFIRMED or starts_at is None:
        return
    if now >= starts_at:
        raise Conflict(
            "The event or slot has started; a confirmed booking can no longer be canceled.",
            code="event-started",
            extra={"starts_at": starts_at.isoformat()},
        )
    cancel_until = starts_at - dt.timedelta(seconds=settings.BOOKING_REFUND_CUTOFF_SECONDS)
    if now >= cancel_until:
        raise Conflict(
            f"A confirmed booking can be canceled until {settings.BOOKING_REFUND_CUTOFF_SECONDS}"
            " seconds before the start.",
            code="refund-cutoff-passed",
            extra={"starts_at": starts_at.isoformat(), "cancel_until": cancel_until.isoformat()},
        )


def booking_cancel(*, booking_id: int, actor: Actor) -> Booking:
    """Cancel a pending or confirmed booking: inventory goes back, a payment is refunded.

    Canceling a canceled booking changes nothing. A customer's cancelation of a confirmed
    booking inside the refund cutoff (`BOOKING_REFUND_CUTOFF_SECONDS` before the start, or
    after the start) is refused with 409. The refund is asked of the provider after the
    commit, never while the rows are locked.
    """
    from booking_service.payments.services import payment_refund

    booking = get_own_booking(booking_id=booking_id, actor=actor)
    if booking.status not in ACTIVE_STATUSES:
        return booking
    reason = (
        CancelReason.ADMIN
        if actor.is_admin and booking.user_id != actor.id
        else (CancelReason.USER)
    )
    now = timezone.now()
    _check_refundable(booking, actor=actor, now=now)  # before any lock
    with transaction.atomic():
        if booking.event_id is not None:
            lock_event(booking.event_id)
        booking = relock_booking(booking.pk)
        if booking.status not in ACTIVE_STATUSES:
            return booking
        _check_refundable(booking, actor=actor, now=now)  # it may have been paid meanwhile
        if booking.event is not None:
            returned = booking.tickets_booked or 0
            Event.objects.filter(pk=booking.event.pk).update(
                available_tickets=F("available_tickets") + returned
            )
            booking.event.available_tickets += returned
        refunds = _cancel_locked([booking], reason=reason, now=now)
    for payment_id in refunds:
        payment_refund(payment_id=payment_id, reason="booking_canceled")
    return booking


def bookings_cancel_for_event(*, event: Event, now: dt.datetime) -> tuple[list[str], list[int]]:
    """Inside the event's locked transaction: cancel all its active bookings and return the
    tickets. Returns the affected user ids and the payments to refund after commit."""
    bookings = list(
        Booking.objects.select_for_update(of=("self",))
        .filter(event=event, status__in=ACTIVE_STATUSES)
        .order_by("id")
    )
    for booking in bookings:
        booking.event = event
    returned = sum(booking.tickets_booked or 0 for booking in bookings)
    event.available_tickets += returned
    refunds = _cancel_locked(bookings, reason=CancelReason.EVENT_CANCELED, now=now)
    return [str(booking.user_id) for booking in bookings], refunds
