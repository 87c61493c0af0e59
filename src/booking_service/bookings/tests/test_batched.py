"""The batched bookings view: same answers as the regular view, real concurrency, and
everything unusual handed to the regular view."""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.urls import resolve
from django.utils import timezone
from rest_framework import serializers

from booking_service.actions.bookings import booking_cancel
from booking_service.api.batched import BatchedBookings
from booking_service.api.bookings import BookingOutputSerializer, booking_representation
from booking_service.bookings.batching import database as batch_database
from booking_service.bookings.batching.batcher import Ask, Decided, SoldOut, TicketBatcher
from booking_service.bookings.batching.database import Outcome, execute_batch
from booking_service.bookings.inventory import event_inventory
from booking_service.bookings.messages import booking_message
from booking_service.bookings.models import Booking, BookingStatus
from booking_service.bookings.services import booking_create_slot, booking_create_tickets
from booking_service.events.models import Event, EventStatus
from booking_service.testing import (
    batched_view,
    database_rows,
    make_event,
    make_resource,
    next_slot,
)
from servicekit.actors import Actor
from servicekit.messages import BookingCreated, decode_envelope, message_to_builtins
from servicekit.outbox.models import OutboxMessage
from servicekit.outbox.relay import envelope_bytes
from servicekit.testing import Caller

PROBLEM = "application/problem+json"
ADDRESS = "10.0.0.1"


class RegularPath:
    """Stands for the rest of the middleware stack and records what reached it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.calls += 1
        return HttpResponse(status=299)


@pytest.fixture
def regular() -> RegularPath:
    return RegularPath()


@pytest.fixture
def middleware(regular: RegularPath, settings: Any) -> BatchedBookings:
    settings.BOOKING_SOLDOUT_CACHE_SECONDS = 1.0
    return batched_view(regular)


def post(caller: Caller, body: Any, *, path: str = "/api/bookings/", **headers: str) -> HttpRequest:
    data = body if isinstance(body, str) else json.dumps(body)
    meta: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {caller.token}", **headers}
    return RequestFactory().post(path, data=data, content_type="application/json", **meta)


@pytest.mark.django_db
class TestAnswers:
    def test_a_hold_answers_like_the_regular_view(
        self, middleware: BatchedBookings, regular: RegularPath, customer: Caller
    ) -> None:
        event = make_event(total_tickets=10, price="12.50")
        response = middleware(post(customer, {"event": event.pk, "tickets_booked": 3}))
        assert response.status_code == 201
        assert regular.calls == 0
        body = json.loads(response.content)
        booking = Booking.objects.get(pk=body["id"])
        assert body == BookingOutputSerializer(booking).data == drf_representation(booking)
        assert (booking.user_id, booking.status, booking.amount) == (
            customer.id,
            BookingStatus.PENDING,
            booking.amount.__class__("37.50"),
        )
        event.refresh_from_db()
        assert event.available_tickets == 7
        outbox = OutboxMessage.objects.get(type="booking.created")
        # The payload written in SQL is the regular path's, field for field, and decodes into
        # the model of its type the way a consumer reads it off the bus.
        expected = booking_message(BookingCreated, booking)
        assert outbox.data == message_to_builtins(expected)
        envelope = decode_envelope(envelope_bytes(outbox))
        assert envelope.data == expected
        assert isinstance(envelope.data, BookingCreated)
        assert outbox.producer == "booking"

    def test_sold_out_is_a_409_problem(self, middleware: BatchedBookings, customer: Caller) -> None:
        event = make_event(total_tickets=2)
        response = middleware(post(customer, {"event": event.pk, "tickets_booked": 3}))
        assert response.status_code == 409
        assert response["Content-Type"] == PROBLEM
        body = json.loads(response.content)
        assert body["type"] == "urn:problem:sold-out"
        assert body["available_tickets"] == 2
        assert not Booking.objects.exists()

    @pytest.mark.parametrize(
        ("body", "headers"),
        [
            ({"event": 1, "tickets_booked": 1, "user_id": str(uuid.uuid4())}, {}),
            ({"event": "1", "tickets_booked": 1}, {}),
            ({"event": 1, "tickets_booked": 0}, {}),
            ({"event": 1, "tickets_booked": 11}, {}),
            ({"event": 2**64, "tickets_booked": 1}, {}),
            ({"event": 1, "tickets_booked": True}, {}),
            ('{"event": 1, "tickets_booked": ', {}),
            ([1, 2], {}),
            ({"event": 1, "tickets_booked": 1}, {"HTTP_IDEMPOTENCY_KEY": "abc"}),
        ],
        ids=["extra-field", "string-id", "zero", "over-max", "huge-id", "bool", "bad-json",
             "list", "idempotency-key"],
    )  # fmt: skip
    def test_unusual_requests_go_to_the_regular_view(
        self,
        middleware: BatchedBookings,
        regular: RegularPath,
        customer: Caller,
        body: Any,
        headers: dict[str, str],
    ) -> None:
        assert middleware(post(customer, body, **headers)).status_code == 299
        assert regular.calls == 1
        assert not Booking.objects.exists()

    def test_bad_tokens_go_to_the_regular_view(
        self, middleware: BatchedBookings, regular: RegularPath
    ) -> None:
        forged = Caller(
            user_id=str(uuid.uuid4()), role="customer", token="eyJhbGciOiJub25lIn0.e30."
        )
        assert middleware(post(forged, {"event": 1, "tickets_booked": 1})).status_code == 299
        request = RequestFactory().post(
            "/api/bookings/",
            data='{"event": 1, "tickets_booked": 1}',
            content_type="application/json",
        )
        assert middleware(request).status_code == 299
        assert regular.calls == 2

    def test_events_the_regular_view_must_explain(
        self, middleware: BatchedBookings, regular: RegularPath, customer: Caller
    ) -> None:
        canceled = make_event(total_tickets=5)
        Event.objects.filter(pk=canceled.pk).update(status=EventStatus.CANCELED)
        past = make_event(total_tickets=5)
        Event.objects.filter(pk=past.pk).update(date=dt.date(2000, 1, 1))
        for event_id in (canceled.pk, past.pk, 999_999):
            response = middleware(post(customer, {"event": event_id, "tickets_booked": 1}))
            assert response.status_code == 299
        assert regular.calls == 3
        assert not Booking.objects.exists()

    def test_other_methods_pass_through(
        self, middleware: BatchedBookings, regular: RegularPath
    ) -> None:
        middleware(RequestFactory().get("/api/bookings/"))
        middleware(RequestFactory().put("/api/bookings/"))
        assert regular.calls == 2

    def test_the_collection_is_routed_to_it(self, customer: Caller, settings: Any) -> None:
        """The URLconf sends both collection paths here, with the DRF view behind."""
        settings.BOOKING_SOLDOUT_CACHE_SECONDS = 0.0
        event = make_event(total_tickets=5)
        paths = ("/api/bookings", "/api/bookings/", "/api/bookings/create", "/api/bookings/create/")
        for path in paths:
            assert isinstance(resolve(path).func, BatchedBookings)
            response = Client().post(
                path,
                {"event": event.pk, "tickets_booked": 1},
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {customer.token}",
            )
            assert response.status_code == 201
        event.refresh_from_db()
        assert event.available_tickets == 1


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
            middleware(post(customer, {"event": event.pk, "tickets_booked": 2})).status_code == 201
        )
        # The hold expires right away (the sold-out memory must not outlive it).
        Booking.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
        middleware.batcher._sold_out_until.clear()
        # The regular view releases the expired hold and books; here it is only counted.
        assert (
            middleware(post(customer, {"event": event.pk, "tickets_booked": 1})).status_code == 299
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
            request = post(buyers[index], {"event": event.pk, "tickets_booked": 1})
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


@pytest.mark.django_db
def test_the_batched_path_can_be_turned_off(settings: Any, customer: Caller) -> None:
    settings.BOOKING_FAST_PATH = False
    event = make_event(total_tickets=5)
    regular = RegularPath()
    view = batched_view(regular)
    assert view(post(customer, {"event": event.pk, "tickets_booked": 1})).status_code == 299
    assert regular.calls == 1
    assert not Booking.objects.exists()


def drf_representation(booking: Booking) -> dict[str, Any]:
    """What DRF itself makes of `BookingOutputSerializer`'s fields."""
    return dict(serializers.ModelSerializer.to_representation(BookingOutputSerializer(), booking))


@pytest.mark.django_db
def test_one_representation_of_a_booking(customer: Caller) -> None:
    """`booking_representation` (every bookings endpoint's output) is what DRF would make of
    the serializer's fields, for a hold, a confirmed, a canceled and a slot booking."""
    event = make_event(total_tickets=10, price="12.50")
    hold = booking_create_tickets(user_id=customer.id, event_id=event.pk, tickets_booked=3)
    confirmed = booking_create_tickets(user_id=customer.id, event_id=event.pk, tickets_booked=1)
    Booking.objects.filter(pk=confirmed.pk).update(
        status=BookingStatus.CONFIRMED, confirmed_at=timezone.now()
    )
    canceled = booking_create_tickets(user_id=customer.id, event_id=event.pk, tickets_booked=1)
    booking_cancel(booking_id=canceled.pk, actor=Actor(id=customer.id))
    resource = make_resource()
    start, end = next_slot()
    slot = booking_create_slot(
        user_id=customer.id, resource_id=resource.pk, start_time=start, end_time=end
    )
    for booking in Booking.objects.filter(pk__in=[hold.pk, confirmed.pk, canceled.pk, slot.pk]):
        assert booking_representation(booking) == drf_representation(booking)


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
        cursor.execute(f"PREPARE {batch_database._PREPARED} AS SELECT 1")
    batch_database._prepared_on.discard(connection.connection)
    assert isinstance(
        batcher.book(event_id=event.pk, tickets=2, user_id=customer.id, address=ADDRESS), Booking
    )
    event.refresh_from_db()
    assert event.available_tickets == 3


# Bodies the parser refuses; EVENT stands for a real event's id.
REFUSED_BODIES = [
    (b"[" * 50_000, 400, "malformed-json"),
    (b'{"event": EVENT, "tickets_booked": ' + b"[" * 50_000, 400, "malformed-json"),
    (b'{"event": EVENT, "tickets_booked": 1, "x": ' + b"[" * 40 + b"]" * 40 + b"}", 400,
     "json-too-deep"),
    (b'{"event": EVENT, "tickets_booked": 1e400}', 400, "json-number-out-of-range"),
    (b'{"event": %d, "tickets_booked": 1}' % 2**70, 400, "json-number-out-of-range"),
    (b'{"event": EVENT, "tickets_booked": NaN}', 400, "malformed-json"),
    (b'{"event": EVENT, "tickets_booked": -Infinity}', 400, "malformed-json"),
    (b'{"event": EVENT, "tickets_booked": 1, "x": "\\u0000"}', 400, "json-nul-character"),
    (b'{"event": EVENT, "tickets_booked": 1, "x": "\xff"}', 400, "malformed-json"),
    (b'{"event": EVENT, "tickets_booked": 1, "x": "' + b"a" * 300_000 + b'"}', 413,
     "body-too-large"),
]  # fmt: skip


@pytest.mark.django_db
class TestLimits:
    """The batched path reads the body with the regular view's parser: what the parser
    refuses goes to the regular view, so both paths give the same problem."""

    @pytest.mark.parametrize(("template", "status", "code"), REFUSED_BODIES)
    def test_same_problem_as_the_regular_path_and_nothing_changes(
        self, settings: Any, customer: Caller, template: bytes, status: int, code: str
    ) -> None:
        body = template.replace(b"EVENT", str(make_event(total_tickets=10).pk).encode())
        before = database_rows()
        answers = []
        for fast in (True, False):
            settings.BOOKING_FAST_PATH = fast
            response = Client().post(
                "/api/bookings/",
                body,
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {customer.token}",
            )
            answers.append((response.status_code, response["Content-Type"], response.json()))
        assert answers[0] == answers[1]
        assert answers[0][:2] == (status, PROBLEM)
        assert answers[0][2]["type"] == f"urn:problem:{code}"
        assert database_rows() == before

    @pytest.mark.parametrize(("template", "status", "code"), REFUSED_BODIES)
    def test_handed_to_the_regular_view(
        self,
        middleware: BatchedBookings,
        regular: RegularPath,
        customer: Caller,
        template: bytes,
        status: int,
        code: str,
    ) -> None:
        body = template.replace(b"EVENT", str(make_event(total_tickets=10).pk).encode())
        request = RequestFactory().post(
            "/api/bookings/",
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {customer.token}",
        )
        assert middleware(request).status_code == 299
        assert regular.calls == 1

    def test_a_content_length_over_the_limit_is_413_without_reading_the_body(
        self, settings: Any, customer: Caller
    ) -> None:
        event = make_event(total_tickets=10)
        before = database_rows()
        settings.BOOKING_FAST_PATH = True
        response = Client().generic(
            "POST",
            "/api/bookings/",
            json.dumps({"event": event.pk, "tickets_booked": 1}),
            "application/json",
            HTTP_AUTHORIZATION=f"Bearer {customer.token}",
            CONTENT_LENGTH="999999999",
        )
        assert response.status_code == 413
        assert response.json()["type"] == "urn:problem:body-too-large"
        assert database_rows() == before
