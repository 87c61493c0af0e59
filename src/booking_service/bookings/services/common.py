"""What the booking services share: the caller, not-found, hold length, row access."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.conf import settings

from booking_service.bookings.models import Booking
from servicekit.problems import Problem

RELEASE_BATCH = 500


@dataclass(frozen=True)
class Actor:
    """Who asks: the token's subject and whether it is an admin."""

    id: uuid.UUID
    is_admin: bool = False


class NotFound(Problem):
    status_code = 404
    default_code = "not-found"
    default_detail = "Not found."


def hold_expires_at(now: dt.datetime) -> dt.datetime:
    return now + dt.timedelta(seconds=settings.BOOKING_HOLD_SECONDS)


def get_own_booking(*, booking_id: int, actor: Actor) -> Booking:
    bookings = Booking.objects.select_related("event", "resource").filter(pk=booking_id)
    if not actor.is_admin:
        bookings = bookings.filter(user_id=actor.id)
    booking = bookings.first()
    if booking is None:
        raise NotFound("No such booking.", code="booking-not-found")
    return booking


def relock_booking(booking_id: int) -> Booking:
    return (
        Booking.objects.select_for_update(of=("self",))
        .select_related("event", "resource")
        .get(pk=booking_id)
    )
