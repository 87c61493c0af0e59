"""Ticket holds. Inventory is a counter on the event row; taking tickets is one conditional
UPDATE (the database decides, so two buyers can never both take the last ticket)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from booking_service.bookings.locking import lock_event
from booking_service.bookings.messages import booking_message
from booking_service.bookings.models import Booking, BookingKind, BookingStatus
from booking_service.bookings.services.common import (
    Actor,
    NotFound,
    get_own_booking,
    hold_expires_at,
    relock_booking,
)
from booking_service.bookings.services.expiry import release_expired_holds
from booking_service.events.models import Event, EventStatus
from servicekit.messages import BookingCreated
from servicekit.outbox.services import outbox_emit
from servicekit.problems import Conflict, Problem, Unprocessable


def _check_ticket_count(tickets_booked: int) -> None:
    maximum = settings.BOOKING_MAX_TICKETS
    if not 1 <= tickets_booked <= maximum:
        raise Unprocessable(
            f"tickets_booked must be between 1 and {maximum}.", code="invalid-ticket-count"
        )


def hold_limit_reached(*, held: int, tickets: int) -> Conflict:
    """The answer to a hold that would take a customer past `BOOKING_MAX_HELD_TICKETS`
    (the batched path gives the same)."""
    limit = settings.BOOKING_MAX_HELD_TICKETS
    return Conflict(
        f"One customer may hold at most {limit} tickets of an event at a time; "
        f"you hold {held}, so {tickets} more is too many.",
        code="hold-limit-reached",
        extra={"hold_limit": limit, "held_tickets": held},
    )


def _held_tickets(*, user_id: uuid.UUID, event_id: int, excluding: int | None = None) -> int:
    """Tickets in the customer's pending holds of the event. Called with the event row
    locked (every hold, change and release of the event takes it first), so two holds of one
    customer cannot both pass the limit: the second one sees the first one's booking."""
    holds = Booking.objects.filter(user_id=user_id, event_id=event_id, status=BookingStatus.PENDING)
    if excluding is not None:
        holds = holds.exclude(pk=excluding)
    return holds.aggregate(held=Sum("tickets_booked"))["held"] or 0


class _OverHoldLimitError(Exception):
    def __init__(self, held: int) -> None:
        self.held = held


_TAKE_TICKETS_SQL = f"""
    UPDATE {Event._meta.db_table}
    SET available_tickets = available_tickets - %(tickets)s
    WHERE id = %(event_id)s
      AND status = 'active'
      AND available_tickets >= %(tickets)s
      AND (date + time) > (now() AT TIME ZONE 'UTC')
    RETURNING organizer_id, name, price_per_ticket, currency, date, time, location,
              total_tickets, available_tickets
"""  # noqa: S608 (the table name comes from the model)


def _take_tickets(*, event_id: int, tickets: int) -> Event | None:
    """The one statement that takes inventory; None when the event cannot give it."""
    with connection.cursor() as cursor:
        cursor.execute(_TAKE_TICKETS_SQL, {"tickets": tickets, "event_id": event_id})
        row = cursor.fetchone()
    if row is None:
        return None
    organizer_id, name, price, currency, date, time, location, total, available = row
    return Event(
        id=event_id,
        organizer_id=organizer_id,
        name=name,
        price_per_ticket=price,
        currency=currency,
        date=date,
        time=time,
        location=location,
        total_tickets=total,
        available_tickets=available,
        status=EventStatus.ACTIVE,
    )


def _why_no_tickets(*, event_id: int, tickets: int) -> Problem:
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        return NotFound("No such event.", code="event-not-found")
    if event.status == EventStatus.CANCELED:
        return Conflict("The event was canceled.", code="event-canceled")
    if event.starts_at <= timezone.now():
        return Unprocessable("The event has already started.", code="event-past")
    return Conflict(
        f"Not enough tickets left: {event.available_tickets} available, {tickets} asked.",
        code="sold-out",
        extra={"available_tickets": event.available_tickets},
    )


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
                event = _take_tickets(event_id=event_id, tickets=tickets_booked)
                if event is not None:
                    return _hold(user_id=user_id, event=event, tickets_booked=tickets_booked)
        except _OverHoldLimitError as over:
            # Rolled back. Expired holds of the customer still count until released.
            if attempt == 0 and release_expired_holds(event_id=event_id) > 0:
                continue
            raise hold_limit_reached(held=over.held, tickets=tickets_booked) from None
        if attempt == 0 and release_expired_holds(event_id=event_id) == 0:
            break
    raise _why_no_tickets(event_id=event_id, tickets=tickets_booked)


def _hold(*, user_id: uuid.UUID, event: Event, tickets_booked: int) -> Booking:
    """The booking of tickets just taken (the event row is locked by their UPDATE)."""
    held = _held_tickets(user_id=user_id, event_id=event.pk)
    if held + tickets_booked > settings.BOOKING_MAX_HELD_TICKETS:
        raise _OverHoldLimitError(held)
    now = timezone.now()
    booking = Booking.objects.create(
        user_id=user_id,
        kind=BookingKind.TICKETS,
        event=event,
        tickets_booked=tickets_booked,
        status=BookingStatus.PENDING,
        expires_at=hold_expires_at(now),
        amount=event.price_per_ticket * tickets_booked,
        currency=event.currency,
    )
    outbox_emit(booking_message(BookingCreated, booking))
    return booking


def booking_update_tickets(*, booking_id: int, actor: Actor, tickets_booked: int) -> Booking:
    """Change the ticket count of a pending, unexpired booking, atomically with the counter."""
    _check_ticket_count(tickets_booked)
    booking = get_own_booking(booking_id=booking_id, actor=actor)
    if booking.kind != BookingKind.TICKETS or booking.event_id is None:
        raise Unprocessable("Only ticket bookings have a ticket count.", code="not-tickets")
    with transaction.atomic():
        lock_event(booking.event_id)
        booking = relock_booking(booking.pk)
        event = booking.event
        if event is None or booking.tickets_booked is None:
            raise RuntimeError("a ticket booking without event or ticket count")
        if booking.status != BookingStatus.PENDING:
            raise Conflict("Only a pending booking can change.", code="booking-not-pending")
        if booking.expires_at <= timezone.now():
            raise Conflict("The hold has expired.", code="hold-expired")
        if booking.payments.filter(status__in=["pending", "success"]).exists():
            # The amount being charged is the amount the booking keeps.
            raise Conflict(
                "A payment of this booking is in progress; it cannot change now.",
                code="payment-in-progress",
            )
        delta = tickets_booked - booking.tickets_booked
        if delta == 0:
            return booking
        if delta > 0:
            held = _held_tickets(user_id=booking.user_id, event_id=event.pk, excluding=booking.pk)
            if held + tickets_booked > settings.BOOKING_MAX_HELD_TICKETS:
                raise hold_limit_reached(held=held + booking.tickets_booked, tickets=delta)
        changed = Event.objects.filter(
            pk=event.pk, status=EventStatus.ACTIVE, available_tickets__gte=delta
        ).update(available_tickets=F("available_tickets") - delta)
        if not changed:
            raise Conflict(
                f"Not enough tickets left: {event.available_tickets} available.",
                code="sold-out",
                extra={"available_tickets": event.available_tickets},
            )
        event.available_tickets -= delta
        booking.tickets_booked = tickets_booked
        booking.amount = event.price_per_ticket * tickets_booked
        booking.save(update_fields=["tickets_booked", "amount", "updated_at"])
    return booking
