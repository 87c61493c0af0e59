"""Bookings: holds of tickets or slots and their changes. The rules of inventory (taking,
returning, locking, expiry) are `booking_service.bookings.inventory`'s; flows that reach
into payments (cancelation with its refund) are `booking_service.actions`'."""

from booking_service.bookings.services.common import Actor, get_own_booking, relock_booking
from booking_service.bookings.services.slots import booking_create_slot
from booking_service.bookings.services.tickets import booking_create_tickets, booking_update_tickets

__all__ = [
    "Actor",
    "booking_create_slot",
    "booking_create_tickets",
    "booking_update_tickets",
    "get_own_booking",
    "relock_booking",
]
