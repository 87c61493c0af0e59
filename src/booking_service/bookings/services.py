"""Bookings: holds of tickets or slots, their changes, cancelation and expiry.

Inventory is a counter on the event row. Taking tickets is one conditional UPDATE (the
database decides, so two buyers can never both take the last ticket); returning them is an
increment. Slots are protected by the exclusion constraint on the bookings table.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from booking_service.bookings.events import (
    BOOKING_CANCELED,
    BOOKING_CREATED,
    BOOKING_EXPIRED,
    booking_data,
)
from booking_service.bookings.locking import lock_event
from booking_service.bookings.models import (
    ACTIVE_STATUSES,
    Booking,
    BookingKind,
    BookingStatus,
    CancelReason,
)
from booking_service.events.models import Event, EventStatus
from booking_service.resources.models import Resource
from booking_service.resources.slots import slot_amount, slot_units
from servicekit.outbox.services import outbox_emit
from servicekit.problems import Conflict, Problem, Unprocessable

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


def _check_ticket_count(tickets_booked: int) -> None:
    maximum = settings.BOOKING_MAX_TICKETS
    if not 1 <= tickets_booked <= maximum:
        raise Unprocessable(
            f"tickets_booked must be between 1 and {maximum}.", code="invalid-ticket-count"
        )


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
    taken.
    """
    _check_ticket_count(tickets_booked)
    for attempt in range(2):
        with transaction.atomic():
            event = _take_tickets(event_id=event_id, tickets=tickets_booked)
            if event is not None:
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
                outbox_emit(event_type=BOOKING_CREATED, data=booking_data(booking))
                return booking
        if attempt == 0 and release_expired_holds(event_id=event_id) == 0:
            break
    raise _why_no_tickets(event_id=event_id, tickets=tickets_booked)


def _expire_locked(bookings: Sequence[Booking], *, now: dt.datetime) -> None:
    ids = [booking.pk for booking in bookings]
    Booking.objects.filter(pk__in=ids).update(
        status=BookingStatus.CANCELED,
        cancel_reason=CancelReason.EXPIRED,
        canceled_at=now,
        updated_at=now,
    )
    for booking in bookings:
        booking.status = BookingStatus.CANCELED
        booking.cancel_reason = CancelReason.EXPIRED
        booking.canceled_at = now
        outbox_emit(
            event_type=BOOKING_EXPIRED, data=booking_data(booking, reason=CancelReason.EXPIRED)
        )


def release_expired_holds(*, event_id: int | None = None, now: dt.datetime | None = None) -> int:
    """Cancel expired pending bookings (`cancel_reason="expired"`) and return their inventory.

    With `event_id`, only that event's holds (the lazy path of a booking attempt); without,
    every expired hold, event by event, then slot holds (the sweeper). Locked bookings are
    skipped: whoever holds the lock (a payment being confirmed) decides their fate.
    Returns how many bookings expired.
    """
    now = now or timezone.now()
    if event_id is not None:
        return _release_event_holds(event_id=event_id, now=now)
    released = 0
    event_ids = (
        Booking.objects.filter(
            status=BookingStatus.PENDING, expires_at__lte=now, event__isnull=False
        )
        .values_list("event_id", flat=True)
        .distinct()
    )
    for expired_event_id in list(event_ids):
        if expired_event_id is not None:
            released += _release_event_holds(event_id=expired_event_id, now=now)
    while True:
        with transaction.atomic():
            slots = list(
                Booking.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("resource")
                .filter(status=BookingStatus.PENDING, expires_at__lte=now, resource__isnull=False)
                .order_by("id")[:RELEASE_BATCH]
            )
            _expire_locked(slots, now=now)
        released += len(slots)
        if len(slots) < RELEASE_BATCH:
            return released


def _release_event_holds(*, event_id: int, now: dt.datetime) -> int:
    # A sold-out event is asked this by every late buyer: look (index only, no lock) before
    # taking the event row lock.
    if not Booking.objects.filter(
        event_id=event_id, status=BookingStatus.PENDING, expires_at__lte=now
    ).exists():
        return 0
    released = 0
    while True:
        with transaction.atomic():
            if not lock_event(event_id):
                return released
            expired = list(
                Booking.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("event")
                .filter(event_id=event_id, status=BookingStatus.PENDING, expires_at__lte=now)
                .order_by("id")[:RELEASE_BATCH]
            )
            if not expired:
                return released
            returned = sum(booking.tickets_booked or 0 for booking in expired)
            Event.objects.filter(pk=event_id).update(
                available_tickets=F("available_tickets") + returned
            )
            # The payloads show the counter after the release.
            for booking in expired:
                if booking.event is not None:
                    booking.event.available_tickets += returned
            _expire_locked(expired, now=now)
        released += len(expired)
        if len(expired) < RELEASE_BATCH:
            return released


def booking_create_slot(
    *,
    user_id: uuid.UUID,
    resource_id: int,
    start_time: dt.datetime,
    end_time: dt.datetime,
) -> Booking:
    """Hold a time slot of a resource until `expires_at`.

    The exclusion constraint refuses an overlap with any active booking; expired holds that
    overlap are canceled first, in the same transaction, so they never block the slot.
    """
    resource = Resource.objects.filter(pk=resource_id, is_active=True).first()
    if resource is None:
        raise NotFound("No such resource.", code="resource-not-found")
    now = timezone.now()
    units = slot_units(resource, start_time=start_time, end_time=end_time, now=now)
    with transaction.atomic():
        expired = list(
            Booking.objects.select_for_update(of=("self",))
            .select_related("resource")
            .filter(
                resource=resource,
                status=BookingStatus.PENDING,
                expires_at__lte=now,
                start_time__lt=end_time,
                end_time__gt=start_time,
            )
        )
        if expired:
            _expire_locked(expired, now=now)
        try:
            booking = Booking.objects.create(
                user_id=user_id,
                kind=BookingKind.SLOT,
                resource=resource,
                start_time=start_time,
                end_time=end_time,
                status=BookingStatus.PENDING,
                expires_at=hold_expires_at(now),
                amount=slot_amount(resource, units),
                currency=resource.currency,
            )
        except IntegrityError as exc:
            raise Conflict(
                "That time overlaps another booking of this resource.", code="slot-taken"
            ) from exc
        outbox_emit(event_type=BOOKING_CREATED, data=booking_data(booking))
    return booking


def _get_own_booking(*, booking_id: int, actor: Actor) -> Booking:
    bookings = Booking.objects.select_related("event", "resource").filter(pk=booking_id)
    if not actor.is_admin:
        bookings = bookings.filter(user_id=actor.id)
    booking = bookings.first()
    if booking is None:
        raise NotFound("No such booking.", code="booking-not-found")
    return booking


def _relock(booking_id: int) -> Booking:
    return (
        Booking.objects.select_for_update(of=("self",))
        .select_related("event", "resource")
        .get(pk=booking_id)
    )


def booking_update_tickets(*, booking_id: int, actor: Actor, tickets_booked: int) -> Booking:
    """Change the ticket count of a pending, unexpired booking, atomically with the counter."""
    _check_ticket_count(tickets_booked)
    booking = _get_own_booking(booking_id=booking_id, actor=actor)
    if booking.kind != BookingKind.TICKETS or booking.event_id is None:
        raise Unprocessable("Only ticket bookings have a ticket count.", code="not-tickets")
    with transaction.atomic():
        lock_event(booking.event_id)
        booking = _relock(booking.pk)
        event = booking.event
        if event is None or booking.tickets_booked is None:
            raise RuntimeError("a ticket booking without event or ticket count")
        if booking.status != BookingStatus.PENDING:
            raise Conflict("Only a pending booking can change.", code="booking-not-pending")
        if booking.expires_at <= timezone.now():
            raise Conflict("The hold has expired.", code="hold-expired")
        delta = tickets_booked - booking.tickets_booked
        if delta == 0:
            return booking
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


@dataclass(frozen=True)
class Cancelation:
    booking: Booking
    refund_payment_ids: list[int]


def _cancel_locked(bookings: Sequence[Booking], *, reason: str, now: dt.datetime) -> list[int]:
    """Mark locked active bookings canceled and emit `booking.canceled`; the caller returns
    ticket inventory. Returns the ids of successful payments to refund after commit."""
    from booking_service.payments.models import Payment, PaymentStatus

    ids = [booking.pk for booking in bookings]
    Booking.objects.filter(pk__in=ids).update(
        status=BookingStatus.CANCELED, cancel_reason=reason, canceled_at=now, updated_at=now
    )
    for booking in bookings:
        booking.status = BookingStatus.CANCELED
        booking.cancel_reason = reason
        booking.canceled_at = now
        outbox_emit(event_type=BOOKING_CANCELED, data=booking_data(booking, reason=reason))
    return list(
        Payment.objects.filter(booking_id__in=ids, status=PaymentStatus.SUCCESS).values_list(
            "pk", flat=True
        )
    )


def booking_cancel(*, booking_id: int, actor: Actor) -> Booking:
    """Cancel a pending or confirmed booking: inventory goes back, a payment is refunded.

    Canceling a canceled booking changes nothing. The refund is asked of the provider after
    the commit, never while the rows are locked.
    """
    from booking_service.payments.services import payment_refund

    booking = _get_own_booking(booking_id=booking_id, actor=actor)
    if booking.status not in ACTIVE_STATUSES:
        return booking
    reason = (
        CancelReason.ADMIN
        if actor.is_admin and booking.user_id != actor.id
        else (CancelReason.USER)
    )
    now = timezone.now()
    with transaction.atomic():
        if booking.event_id is not None:
            lock_event(booking.event_id)
        booking = _relock(booking.pk)
        if booking.status not in ACTIVE_STATUSES:
            return booking
        if booking.event is not None:
            returned = booking.tickets_booked or 0
            Event.objects.filter(pk=booking.event.pk).update(
                available_tickets=F("available_tickets") + returned
            )
            booking.event.available_tickets += returned
        refunds = _cancel_locked([booking], reason=reason, now=now)
    for payment_id in refunds:
        payment_refund(payment_id=payment_id, reason="booking_canceled")
    return booking


def bookings_cancel_for_event(*, event: Event, now: dt.datetime) -> tuple[list[str], list[int]]:
    """Inside the event's locked transaction: cancel all its active bookings and return the
    tickets. Returns the affected user ids and the payments to refund after commit."""
    bookings = list(
        Booking.objects.select_for_update(of=("self",))
        .filter(event=event, status__in=ACTIVE_STATUSES)
        .order_by("id")
    )
    for booking in bookings:
        booking.event = event
    returned = sum(booking.tickets_booked or 0 for booking in bookings)
    event.available_tickets += returned
    refunds = _cancel_locked(bookings, reason=CancelReason.EVENT_CANCELED, now=now)
    return [str(booking.user_id) for booking in bookings], refunds
