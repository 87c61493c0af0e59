"""Change or cancel an event: its bookings and its inventory change with it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from booking_service.actions.payments import payment_refund
from booking_service.bookings import inventory
from booking_service.bookings.models import ACTIVE_STATUSES, Booking, CancelReason
from booking_service.events.messages import event_canceled_message, event_message
from booking_service.events.models import Event, EventStatus
from booking_service.events.services import check_future
from booking_service.payments.selectors import refundable_payment_ids
from booking_service.tickets.services import tickets_void
from servicekit.errors import Conflict
from servicekit.messages import EventUpdated
from servicekit.outbox.services import outbox_emit

EDITABLE_FIELDS = frozenset(
    {"name", "description", "date", "time", "location", "total_tickets", "price_per_ticket"}
)


def event_update(*, event_id: int, **fields: Any) -> Event:
    """Change an event. A new `total_tickets` moves `available_tickets` by the same amount
    and may not go below what is held plus sold (the row is locked meanwhile)."""
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"not editable: {sorted(unknown)}")
    with transaction.atomic():
        inventory.lock_event(event_id)
        event = Event.objects.get(pk=event_id)
        if event.status == EventStatus.CANCELED:
            raise Conflict("A canceled event cannot change.", code="event-canceled")
        if "date" in fields or "time" in fields:
            check_future(fields.get("date", event.date), fields.get("time", event.time))
        if "total_tickets" in fields:
            inventory.set_total_tickets(event, int(fields.pop("total_tickets")))
        for name, value in fields.items():
            setattr(event, name, value)
        event.save()
        if "date" in fields or "time" in fields:
            event.refresh_from_db(fields=["starts_at"])
        outbox_emit(event_message(EventUpdated, event))
    return event


def event_cancel(*, event_id: int) -> Event:
    """Cancel an event (what DELETE does): every active booking is canceled and its tickets
    return, paid ones are refunded after the commit; each change is published."""
    with transaction.atomic():
        inventory.lock_event(event_id)
        event = Event.objects.get(pk=event_id)
        if event.status == EventStatus.CANCELED:
            return event
        bookings = list(
            Booking.objects.select_for_update(of=("self",))
            .filter(event=event, status__in=ACTIVE_STATUSES)
            .order_by("id")
        )
        for booking in bookings:
            booking.event = event
        # The counter is saved with the status below; the messages show it.
        event.available_tickets += sum(booking.tickets_booked or 0 for booking in bookings)
        now = timezone.now()
        inventory.end_holds(bookings, reason=CancelReason.EVENT_CANCELED, now=now)
        tickets_void(booking_ids=[booking.pk for booking in bookings], now=now)
        refunds = refundable_payment_ids([booking.pk for booking in bookings])
        event.status = EventStatus.CANCELED
        event.save(update_fields=["status", "available_tickets", "updated_at"])
        holders = [str(booking.user_id) for booking in bookings]
        outbox_emit(event_canceled_message(event, affected_user_ids=holders))
    for payment_id in refunds:
        payment_refund(payment_id=payment_id, reason="event_canceled")
    return event
