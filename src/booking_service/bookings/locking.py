"""Row locks, always in one order: the event row first, then booking rows.

Every write that touches both an event's counter and its bookings takes the event lock
first, so two such writes can wait for each other but never deadlock. Creating a hold takes
only the event row (the conditional UPDATE); confirming a payment takes only the booking.
"""

from __future__ import annotations

from django.db import connection

from booking_service.events.models import Event


def lock_event(event_id: int) -> bool:
    """`SELECT ... FOR UPDATE` on the event row; False when it does not exist."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {Event._meta.db_table} WHERE id = %s FOR UPDATE",  # noqa: S608
            [event_id],
        )
        return cursor.fetchone() is not None
