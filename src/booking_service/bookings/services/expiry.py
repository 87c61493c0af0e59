"""Expiry of holds: lazily on the hot path and by the sweeper."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from booking_service.bookings.locking import lock_event
from booking_service.bookings.messages import booking_message
from booking_service.bookings.models import Booking, BookingStatus, CancelReason
from booking_service.bookings.services.common import RELEASE_BATCH
from booking_service.events.models import Event
from servicekit.messages import BookingExpired
from servicekit.outbox.services import outbox_emit_many

logger = logging.getLogger(__name__)

# The database being away is no hold's fault: the sweeper's round ends and is tried again.
DATABASE_AWAY = (OperationalError, InterfaceError)


def expired_holds(*, now: dt.datetime) -> QuerySet[Booking]:
    """Pending bookings whose hold has ended and whose inventory may go back on sale.

    A hold whose payment is `pending` (the provider's answer is unknown, so the charge may
    have gone through) keeps its inventory until `PAYMENT_PENDING_HOLD_GRACE_SECONDS` past
    its expiry, so the sweeper's payment step can still confirm it; after that it is
    released like any other, and a success learnt later is refunded.
    """
    grace_start = now - dt.timedelta(seconds=settings.PAYMENT_PENDING_HOLD_GRACE_SECONDS)
    return Booking.objects.filter(status=BookingStatus.PENDING, expires_at__lte=now).exclude(
        expires_at__gt=grace_start, payments__status="pending"
    )


def expire_locked_bookings(bookings: Sequence[Booking], *, now: dt.datetime) -> None:
    ids = [booking.pk for booking in bookings]
    Booking.objects.filter(pk__in=ids).update(
        status=BookingStatus.CANCELED,
        cancel_reason=CancelReason.EXPIRED,
        canceled_at=now,
        updated_at=now,
    )
    for booking in bookings:
        booking.status = BookingStatus.CANCELED
        booking.cancel_reason = CancelReason.EXPIRED
        booking.canceled_at = now
    outbox_emit_many(
        [
            booking_message(BookingExpired, booking, reason=CancelReason.EXPIRED)
            for booking in bookings
        ]
    )


def release_expired_holds(*, event_id: int | None = None, now: dt.datetime | None = None) -> int:
    """Cancel expired pending bookings (`cancel_reason="expired"`) and return their inventory.

    With `event_id`, only that event's holds (the lazy path of a booking attempt); without,
    every expired hold, event by event, then slot holds (the sweeper). Locked bookings are
    skipped: whoever holds the lock (a payment being confirmed) decides their fate.
    Returns how many bookings expired.

    The sweeper releases in batches; a batch that raises is released again one hold at a
    time, each in its own transaction, so a hold that cannot be released is logged and left
    for the next round while every other one is released.
    """
    now = now or timezone.now()
    if event_id is not None:
        return _release_event_holds(event_id=event_id, now=now)
    released = 0
    event_ids = (
        expired_holds(now=now)
        .filter(event__isnull=False)
        .values_list("event_id", flat=True)
        .distinct()
    )
    for expired_event_id in list(event_ids):
        if expired_event_id is None:
            continue
        try:
            released += _release_event_holds(event_id=expired_event_id, now=now)
        except DATABASE_AWAY:
            raise
        except Exception:
            logger.exception("sweeper: holds of event %s failed; one at a time", expired_event_id)
            for booking_id in _expired_ids(now=now, event_id=expired_event_id):
                released += _release_one(now=now, booking_id=booking_id, event_id=expired_event_id)
    try:
        released += _release_slot_holds(now=now)
    except DATABASE_AWAY:
        raise
    except Exception:
        logger.exception("sweeper: slot holds failed; one at a time")
        for booking_id in _expired_ids(now=now, event_id=None):
            released += _release_one(now=now, booking_id=booking_id, event_id=None)
    return released


def _expired_ids(*, now: dt.datetime, event_id: int | None) -> list[int]:
    expired = expired_holds(now=now)
    if event_id is None:
        expired = expired.filter(resource__isnull=False)
    else:
        expired = expired.filter(event_id=event_id)
    return list(expired.order_by("id").values_list("id", flat=True))


def _release_one(*, now: dt.datetime, booking_id: int, event_id: int | None) -> int:
    try:
        if event_id is None:
            return _release_slot_holds(now=now, booking_id=booking_id)
        return _release_event_holds(event_id=event_id, now=now, booking_id=booking_id)
    except DATABASE_AWAY:
        raise
    except Exception:
        logger.exception("sweeper: hold %s could not be released; next round", booking_id)
        return 0


def _release_slot_holds(*, now: dt.datetime, booking_id: int | None = None) -> int:
    released = 0
    while True:
        with transaction.atomic():
            expired = expired_holds(now=now).filter(resource__isnull=False)
            if booking_id is not None:
                expired = expired.filter(pk=booking_id)
            slots = list(
                expired.select_for_update(skip_locked=True, of=("self",))
                .select_related("resource")
                .order_by("id")[:RELEASE_BATCH]
            )
            expire_locked_bookings(slots, now=now)
        released += len(slots)
        if len(slots) < RELEASE_BATCH:
            return released


def _release_event_holds(*, event_id: int, now: dt.datetime, booking_id: int | None = None) -> int:
    # A sold-out event is asked this by every late buyer: look (index only, no lock) before
    # taking the event row lock.
    event_holds = expired_holds(now=now).filter(event_id=event_id)
    if booking_id is not None:
        event_holds = event_holds.filter(pk=booking_id)
    if not event_holds.exists():
        return 0
    released = 0
    while True:
        with transaction.atomic():
            if not lock_event(event_id):
                return released
            expired = list(
                event_holds.select_for_update(skip_locked=True, of=("self",))
                .select_related("event")
                .order_by("id")[:RELEASE_BATCH]
            )
            if not expired:
                return released
            returned = sum(booking.tickets_booked or 0 for booking in expired)
            Event.objects.filter(pk=event_id).update(
                available_tickets=F("available_tickets") + returned
            )
            # The payloads show the counter after the release.
            for booking in expired:
                if booking.event is not None:
                    booking.event.available_tickets += returned
            expire_locked_bookings(expired, now=now)
        released += len(expired)
        if len(expired) < RELEASE_BATCH:
            return released
