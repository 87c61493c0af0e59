"""Ticket holds: taking tickets of an event on sale and changing how many a hold has."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from booking_service.bookings import inventory
from booking_service.bookings.models import Booking, BookingKind, BookingStatus
from booking_service.bookings.services.common import Actor, get_own_booking, relock_booking
from booking_service.events.models import Event, EventStatus
from booking_service.payments.models import PaymentStatus
from servicekit.errors import Conflict, NotFound, Problem, Unprocessable
from servicekit.outbox.services import outbox_emit


def _check_ticket_count(tickets_booked: int) -> None:
    maximum = settings.BOOKING_MAX_TICKETS
    if not 1 <= tickets_booked <= maximum:
        raise Unprocessable(
            f"tickets_booked must be between 1 and {maximum}.", code="invalid-ticket-count"
        )


class _OverHoldLimitError(Exception):
    def __init__(self, held: int) -> None:
        self.held = held


def _why_no_tickets(*, event_id: int, tickets: int) -> Problem:
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        return NotFound("No such event.", code="event-not-found")
    if event.status == EventStatus.CANCELED:
        return Conflict("The event was canceled.", code="event-canceled")
    if not event.is_on_sale(timezone.now()):
        return Unprocessable("The event has already started.", code="event-past")
    return inventory.sold_out(available=event.available_tickets, asked=tickets)


def booking_create_tickets(*, user_id: uuid.UUID, event_id: int, tickets_booked: int) -> Booking:
    """Hold `tickets_booked` tickets of the event until `expires_at`.

    One short transaction: the conditional UPDATE, the booking INSERT, the outbox row. When
    the UPDATE finds too few tickets, expired holds of that event are released (in their own
    transaction) and the UPDATE is tried once more, so an expired hold is never counted as
    taken. The customer's pending holds of the event, this one included, hold at most
    `BOOKING_MAX_HELD_TICKETS` tickets (409 `hold-limit-reached`); an expired hold is
    released before it counts against that either.
    """
    _check_ticket_count(tickets_booked)
    for attempt in range(2):
        try:
            with transaction.atomic():
                event = inventory.take_tickets(event_id=event_id, tickets=tickets_booked)
                if event is not None:
                    return _hold(user_id=user_id, event=event, tickets_booked=tickets_booked)
        except _OverHoldLimitError as over:
            # Rolled back. Expired holds of the customer still count until released.
            if attempt == 0 and _release_expired(event_id) > 0:
                continue
            raise inventory.hold_limit_reached(held=over.held, tickets=tickets_booked) from None
        if attempt == 0 and _release_expired(event_id) == 0:
            break
    raise _why_no_tickets(event_id=event_id, tickets=tickets_booked)


def _release_expired(event_id: int) -> int:
    return inventory.release_event_holds(event_id=event_id, now=timezone.now())


def _hold(*, user_id: uuid.UUID, event: Event, tickets_booked: int) -> Booking:
    """The booking of tickets just taken (the event row is locked by their UPDATE)."""
    held = inventory.held_tickets(user_id=user_id, event_id=event.pk)
    if held + tickets_booked > settings.BOOKING_MAX_HELD_TICKETS:
        raise _OverHoldLimitError(held)
    booking = Booking.objects.create(
        user_id=user_id,
        kind=BookingKind.TICKETS,
        event=event,
        tickets_booked=tickets_booked,
        status=BookingStatus.PENDING,
        expires_at=inventory.hold_expires_at(timezone.now()),
        amount=event.price_per_ticket * tickets_booked,
        currency=event.currency,
    )
    outbox_emit(inventory.booking_created(booking))
    return booking


def booking_update_tickets(*, booking_id: int, actor: Actor, tickets_booked: int) -> Booking:
    """Change the ticket count of a pending, unexpired booking, atomically with the counter."""
    _check_ticket_count(tickets_booked)
    booking = get_own_booking(booking_id=booking_id, actor=actor)
    if booking.kind != BookingKind.TICKETS or booking.event_id is None:
        raise Unprocessable("Only ticket bookings have a ticket count.", code="not-tickets")
    with transaction.atomic():
        inventory.lock_event(booking.event_id)
        booking = relock_booking(booking.pk)
        event = booking.event
        if event is None or booking.tickets_booked is None:
            raise RuntimeError("a ticket booking without event or ticket count")
        if booking.status != BookingStatus.PENDING:
            raise Conflict("Only a pending booking can change.", code="booking-not-pending")
        if booking.expires_at <= timezone.now():
            raise Conflict("The hold has expired.", code="hold-expired")
        live = (PaymentStatus.PENDING, PaymentStatus.SUCCESS)
        if booking.payments.filter(status__in=live).exists():
            # The amount being charged is the amount the booking keeps.
            raise Conflict(
                "A payment of this booking is in progress; it cannot change now.",
                code="payment-in-progress",
            )
        delta = tickets_booked - booking.tickets_booked
        if delta == 0:
            return booking
        if delta > 0:
            held = inventory.held_tickets(
                user_id=booking.user_id, event_id=event.pk, excluding=booking.pk
            )
            if held + tickets_booked > settings.BOOKING_MAX_HELD_TICKETS:
                raise inventory.hold_limit_reached(
                    held=held + booking.tickets_booked, tickets=delta
                )
        inventory.change_tickets(event=event, delta=delta)
        booking.tickets_booked = tickets_booked
        booking.amount = event.price_per_ticket * tickets_booked
        booking.save(update_fields=["tickets_booked", "amount", "updated_at"])
    return booking
