from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from booking_service.bookings.locking import lock_event
from booking_service.events.messages import event_canceled_message, event_message
from booking_service.events.models import Event, EventStatus
from servicekit.messages import EventCreated, EventUpdated
from servicekit.outbox.services import outbox_emit
from servicekit.problems import Conflict, Unprocessable

EDITABLE_FIELDS = frozenset(
    {"name", "description", "date", "time", "location", "total_tickets", "price_per_ticket"}
)


MAX_ADVANCE = dt.timedelta(days=5 * 366)


def _check_future(date: dt.date, time: dt.time) -> None:
    starts_at = dt.datetime.combine(date, time, tzinfo=dt.UTC)
    now = timezone.now()
    if starts_at <= now:
        raise Unprocessable("The event must start in the future.", code="event-in-past")
    if starts_at > now + MAX_ADVANCE:
        raise Unprocessable("Events start at most five years ahead.", code="too-far-ahead")


def event_create(
    *,
    organizer_id: uuid.UUID,
    name: str,
    date: dt.date,
    time: dt.time,
    location: str,
    total_tickets: int,
    price_per_ticket: Decimal,
    currency: str,
    description: str = "",
) -> Event:
    _check_future(date, time)
    with transaction.atomic():
        event = Event.objects.create(
            organizer_id=organizer_id,
            name=name,
            description=description,
            date=date,
            time=time,
            location=location,
            total_tickets=total_tickets,
            available_tickets=total_tickets,
            price_per_ticket=price_per_ticket,
            currency=currency,
        )
        outbox_emit(event_message(EventCreated, event))
    return event


def event_update(*, event_id: int, **fields: Any) -> Event:
    """Change an event. A new `total_tickets` moves `available_tickets` by the same amount
    and may not go below what is held plus sold (the row is locked meanwhile)."""
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"not editable: {sorted(unknown)}")
    with transaction.atomic():
        lock_event(event_id)
        event = Event.objects.get(pk=event_id)
        if event.status == EventStatus.CANCELED:
            raise Conflict("A canceled event cannot change.", code="event-canceled")
        if "date" in fields or "time" in fields:
            _check_future(fields.get("date", event.date), fields.get("time", event.time))
        if "total_tickets" in fields:
            taken = event.total_tickets - event.available_tickets
            new_total = int(fields["total_tickets"])
            if new_total < taken:
                raise Conflict(
                    f"{taken} tickets are held or sold; total_tickets cannot go below that.",
                    code="total-below-taken",
                    extra={"taken_tickets": taken},
                )
            event.available_tickets = new_total - taken
        for name, value in fields.items():
            setattr(event, name, value)
        event.save()
        outbox_emit(event_message(EventUpdated, event))
    return event


def event_cancel(*, event_id: int) -> Event:
    """Cancel an event (what DELETE does): every active booking is canceled and its tickets
    return, paid ones are refunded after the commit; each change is published."""
    from booking_service.bookings.services import bookings_cancel_for_event
    from booking_service.payments.services import payment_refund

    with transaction.atomic():
        lock_event(event_id)
        event = Event.objects.get(pk=event_id)
        if event.status == EventStatus.CANCELED:
            return event
        now = timezone.now()
        affected_user_ids, refunds = bookings_cancel_for_event(event=event, now=now)
        event.status = EventStatus.CANCELED
        event.save(update_fields=["status", "available_tickets", "updated_at"])
        outbox_emit(event_canceled_message(event, affected_user_ids=affected_user_ids))
    for payment_id in refunds:
        payment_refund(payment_id=payment_id, reason="event_canceled")
    return event
