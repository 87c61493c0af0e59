"""Tickets of confirmed bookings, their signed codes, the door staff of an event and the
check-ins they record."""
