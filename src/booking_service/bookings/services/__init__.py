"""Bookings: holds of tickets or slots, their changes, cancelation and expiry.

Inventory is a counter on the event row. Taking tickets is one conditional UPDATE (the
database decides, so two buyers can never both take the last ticket); returning them is an
increment. Slots are protected by the exclusion constraint on the bookings table. Every write
that touches an event's counter and its bookings locks the event row first
(`booking_service.bookings.locking`).
"""

from booking_service.bookings.services.cancelation import booking_cancel, bookings_cancel_for_event
from booking_service.bookings.services.common import Actor, NotFound, hold_expires_at
from booking_service.bookings.services.expiry import release_expired_holds
from booking_service.bookings.services.slots import booking_create_slot
from booking_service.bookings.services.tickets import booking_create_tickets, booking_update_tickets

__all__ = [
    "Actor",
    "NotFound",
    "booking_cancel",
    "booking_create_slot",
    "booking_create_tickets",
    "booking_update_tickets",
    "bookings_cancel_for_event",
    "hold_expires_at",
    "release_expired_holds",
]
