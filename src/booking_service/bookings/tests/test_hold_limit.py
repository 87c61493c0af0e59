"""No hoarding: a customer's pending holds of one event hold at most BOOKING_MAX_HELD_TICKETS
tickets, on the regular path and on the batched path, under real concurrency."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db.models import Sum
from django.test import Client, RequestFactory
from django.utils import timezone

from booking_service.actions.bookings import booking_cancel
from booking_service.api.batched import BatchedBookings
from booking_service.bookings.batching.batcher import Ask
from booking_service.bookings.batching.database import execute_batch
from booking_service.bookings.models import Booking, BookingStatus
from booking_service.bookings.services import booking_create_tickets, booking_update_tickets
from booking_service.bookings.tests.test_concurrency import assert_conserved, run_concurrently
from booking_service.events.models import Event
from booking_service.testing import batched_view, database_rows, make_event
from servicekit.actors import Actor
from servicekit.problems import Conflict
from servicekit.testing import Caller

PROBLEM = "application/problem+json"


def held_by(user_id: uuid.UUID, event: Event) -> int:
    held = Booking.objects.filter(
        user_id=user_id, event=event, status=BookingStatus.PENDING
    ).aggregate(held=Sum("tickets_booked"))["held"]
    return int(held or 0)


def book(caller: Caller, event: Event, tickets: int, *, fast: bool, settings: Any) -> Any:
    settings.BOOKING_FAST_PATH = fast
    return Client().post(
        "/api/bookings/",
        json.dumps({"event": event.pk, "tickets_booked": tickets}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {caller.token}",
    )


@pytest.mark.django_db
class TestBothPaths:
    @pytest.mark.parametrize("role", ["customer", "admin"])
    def test_a_hold_past_the_limit_is_the_same_409_on_both_paths_and_changes_nothing(
        self, settings: Any, new_caller: Callable[[str], Caller], role: str
    ) -> None:
        caller = new_caller(role)  # an admin who books holds for themself, like anyone
        event = make_event(total_tickets=100)
        assert book(caller, event, 6, fast=False, settings=settings).status_code == 201
        before = database_rows()
        answers = []
        for fast in (True, False):
            response = book(caller, event, 5, fast=fast, settings=settings)
            answers.append((response.status_code, response["Content-Type"], response.json()))
        assert answers[0] == answers[1]
        status, content_type, body = answers[0]
        assert (status, content_type) == (409, PROBLEM)
        assert body["type"] == "urn:problem:hold-limit-reached"
        assert (body["hold_limit"], body["held_tickets"]) == (10, 6)
        assert database_rows() == before
        # What still fits is granted, on either path.
        assert book(caller, event, 2, fast=True, settings=settings).status_code == 201
        assert book(caller, event, 2, fast=False, settings=settings).status_code == 201
        assert held_by(caller.id, event) == 10

    def test_the_limit_is_a_setting(self, settings: Any, customer: Caller) -> None:
        settings.BOOKING_MAX_HELD_TICKETS = 3
        event = make_event(total_tickets=100)
        for fast in (True, False):
            response = book(customer, event, 4, fast=fast, settings=settings)
            assert response.status_code == 409
            assert (response.json()["hold_limit"], response.json()["held_tickets"]) == (3, 0)
        assert book(customer, event, 3, fast=True, settings=settings).status_code == 201

    @pytest.mark.parametrize("fast", [True, False], ids=["fast", "regular"])
    def test_other_customers_and_other_events_are_unaffected(
        self, settings: Any, new_caller: Callable[[str], Caller], fast: bool
    ) -> None:
        hoarder, other = new_caller("customer"), new_caller("customer")
        event, another = make_event(total_tickets=100), make_event(total_tickets=100)
        assert book(hoarder, event, 10, fast=fast, settings=settings).status_code == 201
        assert book(hoarder, event, 1, fast=fast, settings=settings).status_code == 409
        assert book(other, event, 10, fast=fast, settings=settings).status_code == 201
        assert book(hoarder, another, 10, fast=fast, settings=settings).status_code == 201

    @pytest.mark.parametrize("fast", [True, False], ids=["fast", "regular"])
    def test_a_canceled_or_paid_hold_frees_the_quota(
        self, settings: Any, customer: Caller, fast: bool
    ) -> None:
        event = make_event(total_tickets=100)
        first = book(customer, event, 4, fast=fast, settings=settings).json()["id"]
        second = book(customer, event, 6, fast=fast, settings=settings).json()["id"]
        assert book(customer, event, 4, fast=fast, settings=settings).status_code == 409
        booking_cancel(booking_id=first, actor=Actor(id=customer.id))
        assert book(customer, event, 4, fast=fast, settings=settings).status_code == 201
        # A paid booking is the customer's, no longer a hold.
        Booking.objects.filter(pk=second).update(status=BookingStatus.CONFIRMED)
        assert book(customer, event, 6, fast=fast, settings=settings).status_code == 201
        assert held_by(customer.id, event) == 10
        assert_conserved(event.pk)

    @pytest.mark.parametrize("fast", [True, False], ids=["fast", "regular"])
    def test_an_expired_hold_frees_the_quota(
        self, settings: Any, customer: Caller, fast: bool
    ) -> None:
        event = make_event(total_tickets=100)
        assert book(customer, event, 10, fast=fast, settings=settings).status_code == 201
        Booking.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
        # Not yet released by anyone: the booking releases it, then counts.
        response = book(customer, event, 10, fast=fast, settings=settings)
        assert response.status_code == 201, response.content
        assert held_by(customer.id, event) == 10
        event.refresh_from_db()
        assert event.available_tickets == 90
        assert_conserved(event.pk)


@pytest.mark.django_db
def test_a_change_that_passes_the_limit_is_refused(customer: Caller) -> None:
    event = make_event(total_tickets=100)
    actor = Actor(id=customer.id)
    booking_create_tickets(user_id=customer.id, event_id=event.pk, tickets_booked=6)
    small = booking_create_tickets(user_id=customer.id, event_id=event.pk, tickets_booked=2)
    before = database_rows()
    with pytest.raises(Conflict) as refused:
        booking_update_tickets(booking_id=small.pk, actor=actor, tickets_booked=5)
    assert refused.value.problem_code == "hold-limit-reached"
    assert refused.value.extra == {"hold_limit": 10, "held_tickets": 8}
    assert database_rows() == before
    assert booking_update_tickets(booking_id=small.pk, actor=actor, tickets_booked=4)
    assert held_by(customer.id, event) == 10


@pytest.mark.django_db
def test_one_batch_counts_its_own_earlier_grants(customer: Caller, settings: Any) -> None:
    """Asks of one customer in one batch statement: each one sees the earlier grants."""
    event = make_event(total_tickets=100)
    booking_create_tickets(user_id=customer.id, event_id=event.pk, tickets_booked=2)
    other = uuid.uuid4()
    batch = [
        Ask(tickets=4, user_id=customer.id, address="10.0.0.1"),  # 6
        Ask(tickets=10, user_id=other, address="10.0.0.1"),  # another customer: its own quota
        Ask(tickets=3, user_id=customer.id, address="10.0.0.1"),  # 9
        Ask(tickets=2, user_id=customer.id, address="10.0.0.1"),  # 11: refused, holds 9
        Ask(tickets=1, user_id=customer.id, address="10.0.0.1"),  # 10: a refused ask took nothing
        Ask(tickets=1, user_id=other, address="10.0.0.1"),  # 11: refused, holds 10
    ]
    results = list(execute_batch(event.pk, batch).outcomes)
    assert [isinstance(result, Booking) for result in results] == [
        True, True, True, False, True, False,
    ]  # fmt: skip
    assert isinstance(results[3], Conflict)
    assert results[3].extra == {"hold_limit": 10, "held_tickets": 9}
    assert isinstance(results[5], Conflict)
    assert results[5].extra == {"hold_limit": 10, "held_tickets": 10}
    assert (held_by(customer.id, event), held_by(other, event)) == (10, 10)
    event.refresh_from_db()
    assert event.available_tickets == 80
    assert_conserved(event.pk)


@pytest.mark.django_db
def test_sold_out_is_answered_before_the_limit(customer: Caller, settings: Any) -> None:
    event = make_event(total_tickets=12)
    assert book(customer, event, 10, fast=True, settings=settings).status_code == 201
    for fast in (True, False):
        response = book(customer, event, 3, fast=fast, settings=settings)
        assert response.json()["type"] == "urn:problem:sold-out"


# --- one customer's burst, real threads ---------------------------------------------------


def _regular(caller: Caller, event: Event) -> str:
    try:
        booking_create_tickets(user_id=caller.id, event_id=event.pk, tickets_booked=1)
    except Conflict as refused:
        return str(refused.problem_code)
    return "booked"


def _fast(middleware: BatchedBookings, caller: Caller, event: Event) -> str:
    request = RequestFactory().post(
        "/api/bookings/",
        data=json.dumps({"event": event.pk, "tickets_booked": 1}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {caller.token}",
    )
    response = middleware(request)
    if response.status_code == 201:
        return "booked"
    assert response.status_code == 409, response.content
    return str(json.loads(response.content)["type"]).removeprefix("urn:problem:")


def _regular_view(request: Any) -> Any:
    raise AssertionError("nothing here needs the regular view")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["regular", "fast", "fast-processes", "mixed"])
def test_a_burst_of_one_customer_never_passes_the_limit(
    settings: Any, new_caller: Callable[[str], Caller], path: str
) -> None:
    """30 single-ticket holds of one customer at once (and 10 of another): exactly the
    limit is granted, whatever path or batch each one takes."""
    settings.BOOKING_SOLDOUT_CACHE_SECONDS = 0.0
    hoarder, other = new_caller("customer"), new_caller("customer")
    event = make_event(total_tickets=100)
    shared = batched_view(_regular_view)

    def hold(index: int) -> tuple[uuid.UUID, str]:
        caller = hoarder if index < 30 else other
        if path == "regular" or (path == "mixed" and index % 2):
            return caller.id, _regular(caller, event)
        if path == "fast":
            return caller.id, _fast(shared, caller, event)
        # A batcher of its own, as in another process: only the row lock orders them.
        return caller.id, _fast(batched_view(_regular_view), caller, event)

    results = run_concurrently(40, hold)

    assert Counter(result for user, result in results if user == hoarder.id) == {
        "booked": 10,
        "hold-limit-reached": 20,
    }
    assert Counter(result for user, result in results if user == other.id) == {"booked": 10}
    assert (held_by(hoarder.id, event), held_by(other.id, event)) == (10, 10)
    event.refresh_from_db()
    assert event.available_tickets == 80
    assert_conserved(event.pk)
