from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from booking_service.actions.events import event_cancel, event_update
from booking_service.actions.payments import payment_create
from booking_service.bookings.inventory import event_inventory
from booking_service.bookings.models import BookingStatus, CancelReason
from booking_service.bookings.services import booking_create_tickets
from booking_service.events.models import Event, EventStatus
from booking_service.events.selectors import event_list
from booking_service.payments.models import PaymentStatus
from booking_service.testing import make_event
from servicekit.actors import Actor
from servicekit.outbox.models import OutboxMessage
from servicekit.problems import Conflict, Unprocessable

pytestmark = pytest.mark.django_db


def test_event_create_sets_inventory_and_emits_event_created() -> None:
    organizer_id = uuid.uuid4()
    event = make_event(organizer_id=organizer_id, total_tickets=50, price="12.50")
    assert event.available_tickets == 50
    assert event.price_per_ticket == Decimal("12.50")
    message = OutboxMessage.objects.get(type="event.created")
    assert message.data["event_id"] == event.pk
    assert message.data["organizer_id"] == str(organizer_id)
    assert message.data["price_per_ticket"] == "12.50"
    assert set(message.data) >= {
        "event_id",
        "organizer_id",
        "name",
        "date",
        "time",
        "location",
        "total_tickets",
        "available_tickets",
        "price_per_ticket",
    }


def test_event_create_refuses_the_past() -> None:
    with pytest.raises(Unprocessable):
        make_event(starts_in=-dt.timedelta(hours=1))
    assert not Event.objects.exists()


def test_database_refuses_negative_or_excess_inventory() -> None:
    event = make_event(total_tickets=5)
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.filter(pk=event.pk).update(available_tickets=-1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.filter(pk=event.pk).update(available_tickets=6)


def test_total_tickets_change_keeps_inventory_consistent() -> None:
    event = make_event(total_tickets=10)
    booking_create_tickets(user_id=uuid.uuid4(), event_id=event.pk, tickets_booked=4)
    updated = event_update(event_id=event.pk, total_tickets=20)
    assert (updated.total_tickets, updated.available_tickets) == (20, 16)
    updated = event_update(event_id=event.pk, total_tickets=4)
    assert (updated.total_tickets, updated.available_tickets) == (4, 0)
    with pytest.raises(Conflict):
        event_update(event_id=event.pk, total_tickets=3)
    inventory = event_inventory(event_id=event.pk)
    assert inventory is not None
    assert inventory.total == inventory.available + inventory.held + inventory.sold


def test_event_cancel_cancels_bookings_refunds_paid_and_publishes() -> None:
    event = make_event(total_tickets=10)
    payer, holder = uuid.uuid4(), uuid.uuid4()
    paid = booking_create_tickets(user_id=payer, event_id=event.pk, tickets_booked=2)
    payment_create(booking_id=paid.pk, user_id=payer, payment_token="tok_visa")
    held = booking_create_tickets(user_id=holder, event_id=event.pk, tickets_booked=3)

    canceled = event_cancel(event_id=event.pk)

    assert canceled.status == EventStatus.CANCELED
    assert canceled.available_tickets == 10
    for booking in (paid, held):
        booking.refresh_from_db()
        assert booking.status == BookingStatus.CANCELED
        assert booking.cancel_reason == CancelReason.EVENT_CANCELED
    assert paid.payments.get().status == PaymentStatus.REFUNDED
    message = OutboxMessage.objects.get(type="event.canceled")
    assert message.data["affected_user_ids"] == sorted([str(payer), str(holder)])
    reasons = [m.data["reason"] for m in OutboxMessage.objects.filter(type="booking.canceled")]
    assert reasons == ["event_canceled", "event_canceled"]
    assert OutboxMessage.objects.filter(type="payment.refunded").count() == 1
    # A second cancel changes nothing.
    event_cancel(event_id=event.pk)
    assert OutboxMessage.objects.filter(type="event.canceled").count() == 1
    assert Actor(id=payer) != Actor(id=holder)


def test_event_list_shows_only_upcoming_events_with_tickets_in_order() -> None:
    later = make_event(starts_in=dt.timedelta(days=3), name="Later")
    sooner = make_event(starts_in=dt.timedelta(days=1), name="Sooner")
    sold_out = make_event(starts_in=dt.timedelta(days=2), total_tickets=1)
    booking_create_tickets(user_id=uuid.uuid4(), event_id=sold_out.pk, tickets_booked=1)
    past = make_event(starts_in=dt.timedelta(days=1))
    Event.objects.filter(pk=past.pk).update(date=timezone.now().date() - dt.timedelta(days=1))
    canceled = make_event(starts_in=dt.timedelta(days=1))
    event_cancel(event_id=canceled.pk)
    assert list(event_list()) == [sooner, later]
    assert list(event_list(text="later")) == [later]
