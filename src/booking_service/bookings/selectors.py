from __future__ import annotations

from django.db.models import Q, QuerySet

from booking_service.bookings.models import Booking
from servicekit.actors import Actor


def booking_list(
    *,
    actor: Actor,
    event_id: int | None = None,
    resource_id: int | None = None,
    status: str | None = None,
) -> QuerySet[Booking]:
    """The caller's bookings; an admin sees all; an organizer also sees every booking of the
    events and resources they own when filtering by one of them."""
    # The list shows related ids only, so no join is needed.
    bookings = Booking.objects.all()
    if not actor.is_admin:
        visible = Q(user_id=actor.id)
        if event_id is not None:
            visible |= Q(event__organizer_id=actor.id)
        if resource_id is not None:
            visible |= Q(resource__organizer_id=actor.id)
        bookings = bookings.filter(visible)
    if event_id is not None:
        bookings = bookings.filter(event_id=event_id)
    if resource_id is not None:
        bookings = bookings.filter(resource_id=resource_id)
    if status:
        bookings = bookings.filter(status=status)
    return bookings.order_by("-created_at", "-id")


def booking_get(*, booking_id: int, actor: Actor) -> Booking | None:
    bookings = Booking.objects.select_related("event", "resource").filter(pk=booking_id)
    if not actor.is_admin:
        bookings = bookings.filter(user_id=actor.id)
    return bookings.first()
