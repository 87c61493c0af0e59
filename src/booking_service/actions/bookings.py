"""Cancel a booking: its tickets go back on sale, then a payment is refunded."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from booking_service.actions.payments import payment_refund
from booking_service.bookings import inventory
from booking_service.bookings.models import ACTIVE_STATUSES, Booking, BookingStatus, CancelReason
from booking_service.bookings.services import Actor, get_own_booking, relock_booking
from booking_service.payments.selectors import refundable_payment_ids
from booking_service.tickets.services import tickets_void
from servicekit.errors import Conflict


def _starts_at(booking: Booking) -> dt.datetime | None:
    if booking.event is not None:
        starts_at: dt.datetime = booking.event.starts_at  # a generated column
        return starts_at
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
    booking = get_own_booking(booking_id=booking_id, actor=actor)
    if booking.status not in ACTIVE_STATUSES:
        return booking
    by_admin = actor.is_admin and booking.user_id != actor.id
    reason = CancelReason.ADMIN if by_admin else CancelReason.USER
    now = timezone.now()
    _check_refundable(booking, actor=actor, now=now)  # before any lock
    with transaction.atomic():
        if booking.event_id is not None:
            inventory.lock_event(booking.event_id)
        booking = relock_booking(booking.pk)
        if booking.status not in ACTIVE_STATUSES:
            return booking
        _check_refundable(booking, actor=actor, now=now)  # it may have been paid meanwhile
        if booking.event is not None:
            returned = booking.tickets_booked or 0
            inventory.return_tickets(event_id=booking.event.pk, tickets=returned)
            booking.event.available_tickets += returned
        inventory.end_holds([booking], reason=reason, now=now)
        tickets_void(booking_ids=[booking.pk], now=now)
        refunds = refundable_payment_ids([booking.pk])
    for payment_id in refunds:
        payment_refund(payment_id=payment_id, reason="booking_canceled")
    return booking
