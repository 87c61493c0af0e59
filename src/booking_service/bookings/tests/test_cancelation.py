"""No refund after the event: a customer cancels a confirmed booking only up to the refund
cutoff before its event or slot starts; an admin always can."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.utils import timezone

from booking_service.actions.bookings import booking_cancel
from booking_service.actions.payments import PaymentOutcome, payment_create
from booking_service.bookings.models import Booking, BookingStatus
from booking_service.bookings.services import booking_create_slot, booking_create_tickets
from booking_service.events.models import Event
from booking_service.payments.models import Payment, PaymentStatus
from booking_service.testing import database_rows, make_event, make_resource, next_slot
from servicekit.actors import Actor
from servicekit.problems import Conflict
from servicekit.testing import Caller

pytestmark = pytest.mark.django_db


def paid_tickets(user: uuid.UUID, *, starts_in: dt.timedelta) -> Booking:
    event = make_event(total_tickets=10, starts_in=dt.timedelta(days=1))
    booking = booking_create_tickets(user_id=user, event_id=event.pk, tickets_booked=2)
    paid = payment_create(booking_id=booking.pk, user_id=user, payment_token="tok_visa")
    assert paid.outcome == PaymentOutcome.CONFIRMED
    starts_at = (timezone.now() + starts_in).astimezone(dt.UTC)
    Event.objects.filter(pk=event.pk).update(date=starts_at.date(), time=starts_at.time())
    return booking


def paid_slot(user: uuid.UUID, *, starts_in: dt.timedelta) -> Booking:
    start, end = next_slot()
    booking = booking_create_slot(
        user_id=user, resource_id=make_resource().pk, start_time=start, end_time=end
    )
    paid = payment_create(booking_id=booking.pk, user_id=user, payment_token="tok_visa")
    assert paid.outcome == PaymentOutcome.CONFIRMED
    start = timezone.now() + starts_in
    Booking.objects.filter(pk=booking.pk).update(
        start_time=start, end_time=start + dt.timedelta(hours=1)
    )
    return booking


@pytest.mark.parametrize("paid", [paid_tickets, paid_slot])
@pytest.mark.parametrize("starts_in", [dt.timedelta(hours=-1), dt.timedelta(seconds=-1)])
def test_a_customer_cannot_cancel_once_it_started(paid: Any, starts_in: dt.timedelta) -> None:
    user = uuid.uuid4()
    booking = paid(user, starts_in=starts_in)
    before = database_rows()
    with pytest.raises(Conflict) as refused:
        booking_cancel(booking_id=booking.pk, actor=Actor(id=user))
    assert refused.value.problem_code == "event-started"
    assert database_rows() == before
    assert Payment.objects.get().status == PaymentStatus.SUCCESS


@pytest.mark.parametrize("paid", [paid_tickets, paid_slot])
def test_an_admin_still_cancels_and_refunds_after_the_start(paid: Any) -> None:
    booking = paid(uuid.uuid4(), starts_in=dt.timedelta(hours=-1))
    canceled = booking_cancel(booking_id=booking.pk, actor=Actor(id=uuid.uuid4(), is_admin=True))
    assert (canceled.status, canceled.cancel_reason) == (BookingStatus.CANCELED, "admin")
    assert Payment.objects.get().status == PaymentStatus.REFUNDED


@pytest.mark.parametrize("paid", [paid_tickets, paid_slot])
def test_the_refund_cutoff_is_a_setting(settings: Any, paid: Any) -> None:
    settings.BOOKING_REFUND_CUTOFF_SECONDS = 3600
    user = uuid.uuid4()
    inside = paid(user, starts_in=dt.timedelta(minutes=30))
    with pytest.raises(Conflict) as refused:
        booking_cancel(booking_id=inside.pk, actor=Actor(id=user))
    assert refused.value.problem_code == "refund-cutoff-passed"
    inside.refresh_from_db()
    assert inside.status == BookingStatus.CONFIRMED
    outside = paid(user, starts_in=dt.timedelta(hours=2))
    assert booking_cancel(booking_id=outside.pk, actor=Actor(id=user)).status == "canceled"
    assert Payment.objects.get(booking=outside).status == PaymentStatus.REFUNDED


def test_by_default_a_customer_cancels_up_to_the_start() -> None:
    user = uuid.uuid4()
    booking = paid_tickets(user, starts_in=dt.timedelta(minutes=1))
    assert booking_cancel(booking_id=booking.pk, actor=Actor(id=user)).status == "canceled"
    assert Payment.objects.get().status == PaymentStatus.REFUNDED


def test_an_unpaid_hold_of_a_started_event_can_still_be_let_go() -> None:
    user = uuid.uuid4()
    event = make_event(total_tickets=10)
    booking = booking_create_tickets(user_id=user, event_id=event.pk, tickets_booked=2)
    started = timezone.now() - dt.timedelta(minutes=5)
    Event.objects.filter(pk=event.pk).update(date=started.date(), time=started.time())
    assert booking_cancel(booking_id=booking.pk, actor=Actor(id=user)).status == "canceled"
    assert Event.objects.get(pk=event.pk).available_tickets == 10


def test_delete_after_the_start_is_a_409_problem(customer: Caller, admin: Caller) -> None:
    booking = paid_tickets(customer.id, starts_in=dt.timedelta(hours=-1))
    response = customer.client().delete(f"/api/bookings/{booking.pk}/")
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == "urn:problem:event-started"
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CONFIRMED
    by_admin = admin.client().delete(f"/api/bookings/{booking.pk}/")
    assert (by_admin.status_code, by_admin.json()["status"]) == (200, "canceled")
