"""What the booking services share: the caller and row access."""

from __future__ import annotations

from booking_service.bookings.models import Booking
from servicekit.actors import Actor
from servicekit.errors import NotFound

__all__ = ["Actor", "get_own_booking", "relock_booking"]


def get_own_booking(*, booking_id: int, actor: Actor) -> Booking:
    """The actor's booking (any booking for an admin); another customer's is not found."""
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
