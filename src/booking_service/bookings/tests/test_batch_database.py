"""The batch executor against PostgreSQL, behind the batched view: the sold-out memory, real
concurrency, a lock wait, prepared statements that a session lost or already had."""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from booking_service.actions.bookings import booking_cancel
from booking_service.api.batched import BatchedBookings
from booking_service.bookings.batching import database as batch_database
from booking_service.bookings.batching.batcher import Ask, Decided, SoldOut, TicketBatcher
from booking_service.bookings.batching.database import Outcome, execute_batch
from booking_service.bookings.inventory import event_inventory
from booking_service.bookings.models import Booking
from booking_service.events.models import Event
from booking_service.testing import (
    RegularPath,
    make_event,
    post_json,
)
from servicekit.actors import Actor
from servicekit.testing import Caller

PROBLEM = "application/problem+json"
ADDRESS = "10.0.0.1"


@pytest.mark.django_db
class TestSoldOutCache:
    def test_not_remembered_past_the_first_hold_expiry(self, customer: Caller) -> None:
        clock = [100.0]
        batcher = TicketBatcher(execute_batch, clock=lambda: clock[0])
        event = make_event(total_tickets=2)
        held = batcher.book(event_id=event.pk, tickets=2, user_id=customer.id, address=ADDRESS)
        assert isinstance(held, Booking)
        remaining = batcher._sold_out_until[event.pk] - clock[0]
        hold_left = (held.expires_at - timezone.now()).total_seconds()
        assert 0 < remaining <= min(1.0, hold_left) + 0.01

    def test_not_remembered_past_the_batchs_own_holds(
        self, customer: Caller, settings: Any
    ) -> None:
        settings.BOOKING_SOLDOUT_CACHE_SECONDS = 5.0
        settings.BOOKING_HOLD_SECONDS = 1
        clock = [100.0]
        batcher = TicketBatcher(execute_batch, clock=lambda: clock[0])
        event = make_event(total_tickets=2)
        assert isinstance(
            batcher.book(event_id=event.pk, tickets=2, user_id=customer.id, address=ADDRESS),
            Booking,
        )
        assert batcher._sold_out_until[event.pk] - clock[0] <= 1.0

    def test_grants_what_is_free_even_while_expired_holds_wait(self, customer: Caller) -> None:
        event = make_event(total_tickets=10)
        batcher = TicketBatcher(execute_batch)
        assert isinstance(
            batcher.book(event_id=event.pk, tickets=1, user_id=customer.id, address=ADDRESS),
            Booking,
        )
        Booking.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
        # 9 tickets are free: the expired hold is no reason to send this elsewhere.
        assert isinstance(
            batcher.book(event_id=event.pk, tickets=3, user_id=customer.id, address=ADDRESS),
            Booking,
        )

    def test_sold_out_is_remembered_then_forgotten(self, customer: Caller, settings: Any) -> None:
        settings.BOOKING_SOLDOUT_CACHE_SECONDS = 5.0
        clock = [100.0]
        batcher = TicketBatcher(execute_batch, clock=lambda: clock[0])
        event = make_event(total_tickets=2)
        first = batcher.book(event_id=event.pk, tickets=2, user_id=customer.id, address=ADDRESS)
        assert isinstance(first, Booking)
        booking_cancel(booking_id=first.pk, actor=Actor(id=customer.id, is_admin=False))
        # Within the cache time the released tickets are not seen...
        assert batcher.book(
            event_id=event.pk, tickets=1, user_id=customer.id, address=ADDRESS
        ) == SoldOut(available=0)
        # ...after it they are.
        clock[0] += 5.1
        assert isinstance(
            batcher.book(event_id=event.pk, tickets=1, user_id=customer.id, address=ADDRESS),
            Booking,
        )

    def test_expired_holds_send_refusals_to_the_regular_view(
        self, middleware: BatchedBookings, regular: RegularPath, customer: Caller
    ) -> None:
        event = make_event(total_tickets=2)
        assert (
            middleware(post_json(customer, {"event": event.pk, "tickets_booked": 2})).status_code
            == 201
        )
        # The hold expires right away (the sold-out memory must not outlive it).
        Booking.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
        middleware.batcher._sold_out_until.clear()
        # The regular view releases the expired hold and books; here it is only counted.
        assert (
            middleware(post_json(customer, {"event": event.pk, "tickets_booked": 1})).status_code
            == 299
        )
        assert regular.calls == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_buyers_share_transactions_and_never_oversell(
    new_caller: Callable[[str], Caller], settings: Any
) -> None:
    settings.BOOKING_SOLDOUT_CACHE_SECONDS = 1.0
    event = make_event(total_tickets=30)
    buyers = [new_caller("customer") for _ in range(60)]
    transactions = Counter[str]()
    barrier = threading.Barrier(len(buyers))
    statuses: list[int] = [0] * len(buyers)

    def counting_execute(event_id: int, batch: list[Ask]) -> Decided[Outcome]:
        transactions["batches"] += 1
        transactions["asks"] += len(batch)
        return execute_batch(event_id, batch)

    regular = RegularPath()
    middleware = BatchedBookings(regular, TicketBatcher(counting_execute))

    def buy(index: int) -> None:
        try:
            barrier.wait(30)
            request = post_json(buyers[index], {"event": event.pk, "tickets_booked": 1})
            statuses[index] = middleware(request).status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(len(buyers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert Counter(statuses) == {201: 30, 409: 30}
    assert regular.calls == 0
    event.refresh_from_db()
    assert event.available_tickets == 0
    assert Booking.objects.filter(event=event).count() == 30
    inventory = event_inventory(event_id=event.pk)
    assert inventory is not None
    assert inventory.total == inventory.available + inventory.held + inventory.sold
    # Requests that queued while a transaction ran were granted together.
    assert transactions["batches"] < transactions["asks"]


@pytest.mark.django_db(transaction=True)
def test_independent_batchers_racing_with_cancelations(settings: Any) -> None:
    """Batchers of different processes contend for the row while cancelations give tickets
    back: no request fails and the counter never goes wrong."""
    settings.BOOKING_SOLDOUT_CACHE_SECONDS = 0.0
    event = make_event(total_tickets=25)
    failures: list[str] = []

    def shop(seed: int) -> None:
        batcher = TicketBatcher(execute_batch)  # one per thread, as one per process
        rng = random.Random(seed)
        try:
            for _ in range(25):
                result = batcher.book(
                    event_id=event.pk,
                    tickets=rng.randint(1, 3),
                    user_id=uuid.uuid4(),
                    address=ADDRESS,
                )
                if isinstance(result, Exception):
                    failures.append(repr(result))
                elif isinstance(result, Booking) and rng.random() < 0.7:
                    booking_cancel(
                        booking_id=result.pk, actor=Actor(id=result.user_id, is_admin=False)
                    )
        finally:
            connection.close()

    threads = [threading.Thread(target=shop, args=(seed,)) for seed in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures[:3]
    inventory = event_inventory(event_id=event.pk)
    assert inventory is not None
    assert inventory.available >= 0
    assert inventory.total == inventory.available + inventory.held + inventory.sold


@pytest.mark.django_db(transaction=True)
def test_a_hold_that_expires_during_the_lock_wait_is_not_counted(
    customer: Caller, settings: Any
) -> None:
    """Expiry is judged after the row lock is granted, not when the statement began."""
    settings.BOOKING_HOLD_SECONDS = 1
    event = make_event(total_tickets=1)
    batcher = TicketBatcher(execute_batch)
    assert isinstance(
        batcher.book(event_id=event.pk, tickets=1, user_id=customer.id, address=ADDRESS), Booking
    )
    batcher._sold_out_until.clear()
    locked = threading.Event()

    def hold_the_row() -> None:
        try:
            with transaction.atomic():
                Event.objects.select_for_update().get(pk=event.pk)
                locked.set()
                time.sleep(1.5)  # the hold expires meanwhile
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    locked.wait(10)
    result = batcher.book(event_id=event.pk, tickets=1, user_id=customer.id, address=ADDRESS)
    holder.join(10)
    assert result is None  # not sold out: the regular view releases the hold and sells


@pytest.mark.django_db(transaction=True)
def test_a_connection_that_lost_the_prepared_statement_prepares_it_again(
    customer: Caller,
) -> None:
    """A pooler (or anyone) may reset the session; the batch prepares its statement again."""
    event = make_event(total_tickets=5)
    batcher = TicketBatcher(execute_batch)
    assert isinstance(
        batcher.book(event_id=event.pk, tickets=1, user_id=customer.id, address=ADDRESS), Booking
    )
    with connection.cursor() as cursor:
        cursor.execute("DISCARD ALL")
    assert isinstance(
        batcher.book(event_id=event.pk, tickets=1, user_id=customer.id, address=ADDRESS), Booking
    )
    event.refresh_from_db()
    assert event.available_tickets == 3


@pytest.mark.django_db(transaction=True)
def test_a_session_that_already_has_the_statement_replaces_it(customer: Caller) -> None:
    """A session handed over with the statement already prepared (by an older release, say)."""
    event = make_event(total_tickets=5)
    batcher = TicketBatcher(execute_batch)
    with connection.cursor() as cursor:
        cursor.execute("DISCARD ALL")
        cursor.execute(f"PREPARE {batch_database._BATCH.name} AS SELECT 1")
    batch_database._BATCH.forget(connection.connection)
    assert isinstance(
        batcher.book(event_id=event.pk, tickets=2, user_id=customer.id, address=ADDRESS), Booking
    )
    event.refresh_from_db()
    assert event.available_tickets == 3
