"""Writes of the tickets app: tickets issued when a booking is confirmed and voided when it
is canceled (both inside the transaction that changes the booking, called by
booking_service.actions), door staff, and check-ins."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from booking_service.bookings.models import Booking, BookingKind
from booking_service.tickets.keys import (
    InvalidTicketCode,
    TicketClaims,
    ticket_code_sign,
    ticket_signing_key_active,
)
from booking_service.tickets.models import CheckIn, EventStaff, Ticket, TicketStatus
from servicekit.errors import Conflict


def tickets_issue(*, booking: Booking) -> list[Ticket]:
    """Tickets 1..k of a confirmed ticket booking, each with its signed code. Issuing twice
    issues nothing new; a slot booking has no tickets."""
    if booking.kind != BookingKind.TICKETS or booking.event_id is None:
        return []
    existing = list(Ticket.objects.filter(booking=booking).order_by("number"))
    if existing:
        return existing
    key = ticket_signing_key_active()
    tickets = []
    for number in range(1, (booking.tickets_booked or 0) + 1):
        claims = TicketClaims(uuid.uuid4(), booking.pk, booking.event_id, number)
        tickets.append(
            Ticket(
                id=claims.ticket_id,
                booking=booking,
                event_id=booking.event_id,
                number=number,
                kid=key.kid,
                code=ticket_code_sign(key=key, claims=claims),
            )
        )
    return Ticket.objects.bulk_create(tickets)


def tickets_void(*, booking_ids: Sequence[int], now: dt.datetime) -> int:
    """The tickets of canceled bookings stop admitting anyone; returns how many."""
    return (
        Ticket.objects.filter(booking_id__in=booking_ids)
        .exclude(status=TicketStatus.VOID)
        .update(status=TicketStatus.VOID, voided_at=now)
    )


def event_staff_add(*, event_id: int, user_id: uuid.UUID) -> EventStaff:
    """Name a user door staff of the event; naming them again changes nothing."""
    EventStaff.objects.bulk_create(
        [EventStaff(event_id=event_id, user_id=user_id)], ignore_conflicts=True
    )
    return EventStaff.objects.get(event_id=event_id, user_id=user_id)


def event_staff_remove(*, event_id: int, user_id: uuid.UUID) -> bool:
    deleted, _ = EventStaff.objects.filter(event_id=event_id, user_id=user_id).delete()
    return bool(deleted)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def checkin_record(*, claims: TicketClaims, nonce: str, scanned_by: uuid.UUID) -> CheckIn:
    """Record the first scan of a verified ticket.

    The ticket row is locked, so of concurrent scans exactly one records the check-in. The
    scan that recorded it, uploaded again (its `nonce`), gets the same check-in back; any
    other scan of the ticket is 409 `already-checked-in` with the time; a void ticket is
    409 `ticket-void`.
    """
    with transaction.atomic():
        ticket = (
            Ticket.objects.select_for_update()
            .filter(
                pk=claims.ticket_id,
                booking_id=claims.booking_id,
                event_id=claims.event_id,
                number=claims.number,
            )
            .first()
        )
        if ticket is None:  # signed here, but for no ticket this database has
            raise InvalidTicketCode
        if ticket.status == TicketStatus.VOID:
            raise Conflict(
                "This ticket is void: its booking was canceled.",
                code="ticket-void",
                extra={"ticket": str(ticket.pk)},
            )
        first = CheckIn.objects.filter(ticket=ticket).first()
        if first is not None:
            if first.nonce == nonce:
                first.ticket = ticket
                return first
            at = _iso(first.checked_in_at)
            raise Conflict(
                f"This ticket was already checked in at {at}.",
                code="already-checked-in",
                extra={"ticket": str(ticket.pk), "checked_in_at": at},
            )
        checkin = CheckIn.objects.create(
            ticket=ticket, nonce=nonce, scanned_by=scanned_by, checked_in_at=timezone.now()
        )
        ticket.status = TicketStatus.CHECKED_IN
        ticket.save(update_fields=["status"])
    return checkin
