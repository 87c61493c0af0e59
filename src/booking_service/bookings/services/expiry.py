"""Expiry of holds: lazily on the hot path and by the sweeper."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from booking_service.bookings.events import BOOKING_EXPIRED, booking_data
from booking_service.bookings.locking import lock_event
from booking_service.bookings.models import Booking, BookingStatus, CancelReason
from booking_service.bookings.services.common import RELEASE_BATCH
from booking_service.events.models import Event
from servicekit.outbox.services import outbox_emit_many


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
        events=[
            (BOOKING_EXPIRED, booking_data(booking, reason=CancelReason.EXPIRED))
            for booking in bookings
        ]
    )


def release_expired_holds(*, event_id: int | None = None, now: dt.datetime | None = None) -> int:
    """Cancel expired pending bookings (`cancel_reason="expired"`) and return their inventory.

    With `event_id`, only that event's holds (the lazy path of a booking attempt); without,
    every expired hold, event by event, then slot holds (the sweeper). Locked bookings are
    skipped: whoever holds the lock (a payment being confirmed) decides their fate.
    Returns how many bookings expired.
    """
    now = now or timezone.now()
    if event_id is not None:
        return _release_event_holds(event_id=event_id, now=now)
    released = 0
    event_ids = (
        Booking.objects.filter(
            status=BookingStatus.PENDING, expires_at__lte=now, event__isnull=False
        )
        .values_list("event_id", flat=True)
        .distinct()
    )
    for expired_event_id in list(event_ids):
        if expired_event_id is not None:
            released += _release_event_holds(event_id=expired_event_id, now=now)
    while True:
        with transaction.atomic():
            slots = list(
                Booking.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("resource")
                .filter(status=BookingStatus.PENDING, expires_at__lte=now, resource__isnull=False)
                .order_by("id")[:RELEASE_BATCH]
            )
            expire_locked_bookings(slots, now=now)
        released += len(slots)
        if len(slots) < RELEASE_BATCH:
            return released


def _release_event_holds(*, event_id: int, now: dt.datetime) -> int:
    # A sold-out event is asked this by every late buyer: look (index only, no lock) before
    # taking the event row lock.
    if not Booking.objects.filter(
        event_id=event_id, status=BookingStatus.PENDING, expires_at__lte=now
    ).exists():
        return 0
    released = 0
    while True:
        with transaction.atomic():
            if not lock_event(event_id):
                return released
            expired = list(
                Booking.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("event")
                .filter(event_id=event_id, status=BookingStatus.PENDING, expires_at__lte=now)
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
