from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from booking_service.actions.bookings import booking_cancel
from booking_service.actions.sweeper import release_expired_holds
from booking_service.bookings.inventory import event_inventory
from booking_service.bookings.models import Booking, BookingKind, BookingStatus, CancelReason
from booking_service.bookings.services import (
    booking_create_slot,
    booking_create_tickets,
    booking_update_tickets,
)
from booking_service.events.models import Event
from booking_service.testing import make_event, make_resource, next_slot
from servicekit.actors import Actor
from servicekit.outbox.models import OutboxMessage
from servicekit.problems import Conflict, NotFound, Unprocessable

pytestmark = pytest.mark.django_db


def assert_conserved(event_id: int) -> None:
    inventory = event_inventory(event_id=event_id)
    assert inventory is not None
    assert inventory.total == inventory.available + inventory.held + inventory.sold


def expire(booking: Booking) -> None:
    Booking.objects.filter(pk=booking.pk).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )


def test_hold_takes_tickets_and_publishes_booking_created(settings: Any) -> None:
    settings.BOOKING_HOLD_SECONDS = 120
    event = make_event(total_tickets=10, price="12.50")
    user_id = uuid.uuid4()
    before = timezone.now()
    booking = booking_create_tickets(user_id=user_id, event_id=event.pk, tickets_booked=3)
    assert booking.status == BookingStatus.PENDING
    assert booking.kind == BookingKind.TICKETS
    assert str(booking.amount) == "37.50"
    assert before + dt.timedelta(seconds=119) < booking.expires_at
    assert booking.expires_at <= timezone.now() + dt.timedelta(seconds=120)
    event.refresh_from_db()
    assert event.available_tickets == 7
    message = OutboxMessage.objects.get(type="booking.created")
    assert message.data["booking_id"] == booking.pk
    assert message.data["user_id"] == str(user_id)
    assert message.data["organizer_id"] == str(event.organizer_id)
    assert message.data["event_name"] == event.name
    assert message.data["kind"] == "tickets"
    assert message.data["resource_id"] is None
    assert message.data["amount"] == "37.50"
    assert_conserved(event.pk)


def test_hold_refuses_more_than_available_and_changes_nothing() -> None:
    event = make_event(total_tickets=2)
    with pytest.raises(Conflict) as excinfo:
        booking_create_tickets(user_id=uuid.uuid4(), event_id=event.pk, tickets_booked=3)
    assert excinfo.value.problem_code == "sold-out"
    event.refresh_from_db()
    assert event.available_tickets == 2
    assert not Booking.objects.exists()


@pytest.mark.parametrize("count", [0, -1, 11])
def test_ticket_count_must_be_within_limits(count: int) -> None:
    event = make_event()
    with pytest.raises(Unprocessable):
        booking_create_tickets(user_id=uuid.uuid4(), event_id=event.pk, tickets_booked=count)


def test_unknown_past_and_canceled_events_are_refused() -> None:
    with pytest.raises(NotFound):
        booking_create_tickets(user_id=uuid.uuid4(), event_id=987654, tickets_booked=1)
    past = make_event()
    Event.objects.filter(pk=past.pk).update(date=timezone.now().date() - dt.timedelta(days=1))
    with pytest.raises(Unprocessable):
        booking_create_tickets(user_id=uuid.uuid4(), event_id=past.pk, tickets_booked=1)


def test_expired_hold_is_released_lazily_by_the_next_buyer() -> None:
    event = make_event(total_tickets=2)
    first = booking_create_tickets(user_id=uuid.uuid4(), event_id=event.pk, tickets_booked=2)
    expire(first)
    second = booking_create_tickets(user_id=uuid.uuid4(), event_id=event.pk, tickets_booked=2)
    first.refresh_from_db()
    assert first.status == BookingStatus.CANCELED
    assert first.cancel_reason == CancelReason.EXPIRED
    assert second.status == BookingStatus.PENDING
    expired = OutboxMessage.objects.get(type="booking.expired")
    assert expired.data["booking_id"] == first.pk
    assert expired.data["reason"] == "expired"
    assert_conserved(event.pk)


def test_sweeper_releases_expired_holds_of_events_and_slots() -> None:
    event = make_event(total_tickets=5)
    resource = make_resource()
    start, end = next_slot()
    held = booking_create_tickets(user_id=uuid.uuid4(), event_id=event.pk, tickets_booked=3)
    fresh = booking_create_tickets(user_id=uuid.uuid4(), event_id=event.pk, tickets_booked=1)
    slot = booking_create_slot(
        user_id=uuid.uuid4(), resource_id=resource.pk, start_time=start, end_time=end
    )
    expire(held)
    expire(slot)
    call_command("release_expired_holds")
    held.refresh_from_db()
    slot.refresh_from_db()
    fresh.refresh_from_db()
    assert (held.status, held.cancel_reason) == (BookingStatus.CANCELED, CancelReason.EXPIRED)
    assert (slot.status, slot.cancel_reason) == (BookingStatus.CANCELED, CancelReason.EXPIRED)
    assert fresh.status == BookingStatus.PENDING
    event.refresh_from_db()
    assert event.available_tickets == 4
    assert OutboxMessage.objects.filter(type="booking.expired").count() == 2
    assert release_expired_holds() == 0
    assert_conserved(event.pk)


def test_a_hold_whose_release_raises_is_left_for_the_next_round_and_the_rest_released(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from booking_service.bookings import inventory as expiry
    from booking_service.bookings import messages

    first, second = make_event(total_tickets=10), make_event(total_tickets=10)
    resource = make_resource()
    doomed = booking_create_tickets(user_id=uuid.uuid4(), event_id=first.pk, tickets_booked=2)
    neighbour = booking_create_tickets(user_id=uuid.uuid4(), event_id=first.pk, tickets_booked=3)
    other = booking_create_tickets(user_id=uuid.uuid4(), event_id=second.pk, tickets_booked=1)
    doomed_slot = booking_create_slot(
        user_id=uuid.uuid4(),
        resource_id=resource.pk,
        start_time=next_slot(hour=9)[0],
        end_time=next_slot(hour=9)[1],
    )
    slot = booking_create_slot(
        user_id=uuid.uuid4(),
        resource_id=resource.pk,
        start_time=next_slot(hour=11)[0],
        end_time=next_slot(hour=11)[1],
    )
    for booking in (doomed, neighbour, other, doomed_slot, slot):
        expire(booking)
    real_booking_message = messages.booking_message

    def booking_message(model: Any, booking: Booking, **kwargs: Any) -> Any:
        if booking.pk in (doomed.pk, doomed_slot.pk):
            raise ValueError("cannot describe this booking")
        return real_booking_message(model, booking, **kwargs)

    monkeypatch.setattr(expiry, "booking_message", booking_message)
    assert release_expired_holds() == 3
    statuses = dict(Booking.objects.values_list("pk", "status"))
    assert statuses[doomed.pk] == statuses[doomed_slot.pk] == BookingStatus.PENDING
    assert (
        statuses[neighbour.pk]
        == statuses[other.pk]
        == statuses[slot.pk]
        == (BookingStatus.CANCELED)
    )
    first.refresh_from_db()
    assert first.available_tickets == 8  # the neighbour's 3 back, the doomed hold's 2 held
    assert_conserved(first.pk)
    assert_conserved(second.pk)
    assert OutboxMessage.objects.filter(type="booking.expired").count() == 3

    monkeypatch.setattr(expiry, "booking_message", real_booking_message)  # fixed: the next round
    assert release_expired_holds() == 2
    first.refresh_from_db()
    assert first.available_tickets == 10


def test_conservation_through_the_whole_lifecycle() -> None:
    from booking_service.actions.payments import payment_create

    event = make_event(total_tickets=20)
    users = [uuid.uuid4() for _ in range(4)]
    bookings = [
        booking_create_tickets(user_id=user, event_id=event.pk, tickets_booked=n + 1)
        for n, user in enumerate(users)
    ]
    assert_conserved(event.pk)
    payment_create(booking_id=bookings[0].pk, user_id=users[0], payment_token="tok_visa")
    assert_conserved(event.pk)
    booking_cancel(booking_id=bookings[1].pk, actor=Actor(id=users[1]))
    assert_conserved(event.pk)
    expire(bookings[2])
    assert_conserved(event.pk)
    release_expired_holds()
    assert_conserved(event.pk)
    booking_update_tickets(booking_id=bookings[3].pk, actor=Actor(id=users[3]), tickets_booked=1)
    assert_conserved(event.pk)
    inventory = event_inventory(event_id=event.pk)
    assert inventory is not None
    assert (inventory.available, inventory.held, inventory.sold) == (18, 1, 1)


def test_update_ticket_count_moves_the_counter_atomically() -> None:
    event = make_event(total_tickets=5, price="10.00")
    user = uuid.uuid4()
    booking = booking_create_tickets(user_id=user, event_id=event.pk, tickets_booked=2)
    booking = booking_update_tickets(booking_id=booking.pk, actor=Actor(id=user), tickets_booked=5)
    assert booking.tickets_booked == 5
    assert str(booking.amount) == "50.00"
    event.refresh_from_db()
    assert event.available_tickets == 0
    booking = booking_update_tickets(booking_id=booking.pk, actor=Actor(id=user), tickets_booked=1)
    event.refresh_from_db()
    assert event.available_tickets == 4
    other = booking_create_tickets(user_id=uuid.uuid4(), event_id=event.pk, tickets_booked=4)
    with pytest.raises(Conflict):
        booking_update_tickets(booking_id=booking.pk, actor=Actor(id=user), tickets_booked=2)
    with pytest.raises(NotFound):
        booking_update_tickets(booking_id=other.pk, actor=Actor(id=user), tickets_booked=1)
    assert_conserved(event.pk)


def test_cancel_returns_tickets_once() -> None:
    event = make_event(total_tickets=5)
    user = uuid.uuid4()
    booking = booking_create_tickets(user_id=user, event_id=event.pk, tickets_booked=2)
    with pytest.raises(NotFound):
        booking_cancel(booking_id=booking.pk, actor=Actor(id=uuid.uuid4()))
    canceled = booking_cancel(booking_id=booking.pk, actor=Actor(id=user))
    assert (canceled.status, canceled.cancel_reason) == (BookingStatus.CANCELED, "user")
    booking_cancel(booking_id=booking.pk, actor=Actor(id=user))
    event.refresh_from_db()
    assert event.available_tickets == 5
    message = OutboxMessage.objects.get(type="booking.canceled")
    assert message.data["reason"] == "user"
    admin_canceled = booking_create_tickets(user_id=user, event_id=event.pk, tickets_booked=1)
    booking_cancel(booking_id=admin_canceled.pk, actor=Actor(id=uuid.uuid4(), is_admin=True))
    admin_canceled.refresh_from_db()
    assert admin_canceled.cancel_reason == CancelReason.ADMIN


def test_slot_booking_prices_by_slot_and_refuses_overlap() -> None:
    resource = make_resource(price="40.00", slot_minutes=30)
    start, end = next_slot(hours=2)
    booking = booking_create_slot(
        user_id=uuid.uuid4(), resource_id=resource.pk, start_time=start, end_time=end
    )
    assert booking.kind == BookingKind.SLOT
    assert str(booking.amount) == "160.00"
    with pytest.raises(Conflict) as excinfo:
        booking_create_slot(
            user_id=uuid.uuid4(),
            resource_id=resource.pk,
            start_time=start + dt.timedelta(hours=1),
            end_time=end + dt.timedelta(hours=1),
        )
    assert excinfo.value.problem_code == "slot-taken"
    # Touching ranges do not overlap ('[)').
    booking_create_slot(
        user_id=uuid.uuid4(),
        resource_id=resource.pk,
        start_time=end,
        end_time=end + dt.timedelta(hours=1),
    )


def test_database_refuses_overlapping_active_slots_even_without_python() -> None:
    resource = make_resource()
    start, end = next_slot()
    fields = {
        "kind": BookingKind.SLOT,
        "resource": resource,
        "start_time": start,
        "end_time": end,
        "expires_at": timezone.now() + dt.timedelta(minutes=5),
        "amount": 1,
        "currency": "USD",
    }
    Booking.objects.create(user_id=uuid.uuid4(), **fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Booking.objects.create(user_id=uuid.uuid4(), **fields)
    # A canceled booking does not block.
    Booking.objects.create(user_id=uuid.uuid4(), status=BookingStatus.CANCELED, **fields)


def test_expired_slot_hold_does_not_block_the_slot() -> None:
    resource = make_resource()
    start, end = next_slot()
    first = booking_create_slot(
        user_id=uuid.uuid4(), resource_id=resource.pk, start_time=start, end_time=end
    )
    expire(first)
    second = booking_create_slot(
        user_id=uuid.uuid4(), resource_id=resource.pk, start_time=start, end_time=end
    )
    first.refresh_from_db()
    assert first.cancel_reason == CancelReason.EXPIRED
    assert second.status == BookingStatus.PENDING


@pytest.mark.parametrize(
    ("start_hour", "hours", "code"),
    [
        (6, 1, "outside-opening-hours"),
        (19, 2, "outside-opening-hours"),
        (10, 0, "invalid-range"),
    ],
)
def test_slot_must_be_within_opening_hours(start_hour: int, hours: int, code: str) -> None:
    resource = make_resource(opening=dt.time(8), closing=dt.time(20))
    start, end = next_slot(hour=start_hour, hours=hours)
    with pytest.raises(Unprocessable) as excinfo:
        booking_create_slot(
            user_id=uuid.uuid4(), resource_id=resource.pk, start_time=start, end_time=end
        )
    assert excinfo.value.problem_code == code
    assert not Booking.objects.exists()


def test_slot_must_align_to_granularity_and_not_be_past() -> None:
    resource = make_resource(slot_minutes=60)
    start, end = next_slot()
    with pytest.raises(Unprocessable) as excinfo:
        booking_create_slot(
            user_id=uuid.uuid4(),
            resource_id=resource.pk,
            start_time=start + dt.timedelta(minutes=15),
            end_time=end + dt.timedelta(minutes=15),
        )
    assert excinfo.value.problem_code == "slot-misaligned"
    start, end = next_slot(days=-2)
    with pytest.raises(Unprocessable):
        booking_create_slot(
            user_id=uuid.uuid4(), resource_id=resource.pk, start_time=start, end_time=end
        )


def test_opening_hours_are_in_the_resource_timezone() -> None:
    import zoneinfo

    tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")
    resource = make_resource(timezone_name="Asia/Tokyo", opening=dt.time(9), closing=dt.time(17))
    start, end = next_slot(hour=9, tz=tokyo)
    booking = booking_create_slot(
        user_id=uuid.uuid4(),
        resource_id=resource.pk,
        start_time=start.astimezone(dt.UTC),
        end_time=end.astimezone(dt.UTC),
    )
    assert booking.start_time == start
    utc_start, utc_end = next_slot(hour=9, tz=dt.UTC)  # 18:00 in Tokyo: closed
    with pytest.raises(Unprocessable):
        booking_create_slot(
            user_id=uuid.uuid4(), resource_id=resource.pk, start_time=utc_start, end_time=utc_end
        )
