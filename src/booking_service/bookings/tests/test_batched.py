"""The batched bookings view: same answers as the regular view, real concurrency, and
everything unusual handed to the regular view."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from typing import Any

import pytest
from django.test import Client, RequestFactory
from django.urls import resolve
from django.utils import timezone
from rest_framework import serializers

from booking_service.actions.bookings import booking_cancel
from booking_service.api.batched import BatchedBookings
from booking_service.api.bookings import BookingOutputSerializer, booking_representation
from booking_service.bookings.messages import booking_message
from booking_service.bookings.models import Booking, BookingStatus
from booking_service.bookings.services import booking_create_slot, booking_create_tickets
from booking_service.events.models import Event, EventStatus
from booking_service.testing import (
    RegularPath,
    batched_view,
    database_rows,
    make_event,
    make_resource,
    next_slot,
    post_json,
)
from servicekit.actors import Actor
from servicekit.messages import BookingCreated, decode_envelope, message_to_builtins
from servicekit.outbox.models import OutboxMessage
from servicekit.outbox.relay import envelope_bytes
from servicekit.testing import Caller

PROBLEM = "application/problem+json"
ADDRESS = "10.0.0.1"


@pytest.mark.django_db
class TestAnswers:
    def test_a_hold_answers_like_the_regular_view(
        self, middleware: BatchedBookings, regular: RegularPath, customer: Caller
    ) -> None:
        event = make_event(total_tickets=10, price="12.50")
        response = middleware(post_json(customer, {"event": event.pk, "tickets_booked": 3}))
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
        assert outbox.message_id.version == 7  # time-ordered, as the regular path's
        assert abs(_uuid7_time(outbox.message_id) - outbox.occurred_at) < dt.timedelta(seconds=5)

    def test_sold_out_is_a_409_problem(self, middleware: BatchedBookings, customer: Caller) -> None:
        event = make_event(total_tickets=2)
        response = middleware(post_json(customer, {"event": event.pk, "tickets_booked": 3}))
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
        assert middleware(post_json(customer, body, **headers)).status_code == 299
        assert regular.calls == 1
        assert not Booking.objects.exists()

    def test_bad_tokens_go_to_the_regular_view(
        self, middleware: BatchedBookings, regular: RegularPath
    ) -> None:
        forged = Caller(
            user_id=str(uuid.uuid4()), role="customer", token="eyJhbGciOiJub25lIn0.e30."
        )
        assert middleware(post_json(forged, {"event": 1, "tickets_booked": 1})).status_code == 299
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
            response = middleware(post_json(customer, {"event": event_id, "tickets_booked": 1}))
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
def test_the_batched_path_can_be_turned_off(settings: Any, customer: Caller) -> None:
    settings.BOOKING_FAST_PATH = False
    event = make_event(total_tickets=5)
    regular = RegularPath()
    view = batched_view(regular)
    assert view(post_json(customer, {"event": event.pk, "tickets_booked": 1})).status_code == 299
    assert regular.calls == 1
    assert not Booking.objects.exists()


def drf_representation(booking: Booking) -> dict[str, Any]:
    """What DRF itself makes of `BookingOutputSerializer`'s fields."""
    return dict(serializers.ModelSerializer.to_representation(BookingOutputSerializer(), booking))


@pytest.mark.django_db
def test_one_representation_of_a_booking(customer: Caller) -> None:
    """`booking_representation` (every bookings endpoint's output) is what DRF would make of
    the serializer's fields, for a hold, a confirmed, a canceled and a slot booking; and the
    list's rows, which PostgreSQL builds (`BOOKING_JSON_SQL`), are the same, with and
    without a fraction of a second in the times."""
    event = make_event(total_tickets=10, price="12.50")
    hold = booking_create_tickets(user_id=customer.id, event_id=event.pk, tickets_booked=3)
    confirmed = booking_create_tickets(user_id=customer.id, event_id=event.pk, tickets_booked=1)
    Booking.objects.filter(pk=confirmed.pk).update(
        status=BookingStatus.CONFIRMED, confirmed_at=timezone.now().replace(microsecond=0)
    )
    canceled = booking_create_tickets(user_id=customer.id, event_id=event.pk, tickets_booked=1)
    booking_cancel(booking_id=canceled.pk, actor=Actor(id=customer.id))
    resource = make_resource()
    start, end = next_slot()
    slot = booking_create_slot(
        user_id=customer.id, resource_id=resource.pk, start_time=start, end_time=end
    )
    bookings = Booking.objects.filter(pk__in=[hold.pk, confirmed.pk, canceled.pk, slot.pk])
    for booking in bookings:
        assert booking_representation(booking) == drf_representation(booking)
    listed = customer.client().get("/api/bookings/").json()["results"]
    assert listed == [booking_representation(b) for b in bookings.order_by("-created_at")]


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


@pytest.mark.django_db
def test_a_refusal_is_not_logged_but_a_server_error_would_be(
    customer: Caller, caplog: pytest.LogCaptureFixture
) -> None:
    """4xx answers are the service saying no; logging each (Django's default) cost a sale
    about 6% of its web time. 5xx answers are still logged."""
    event = make_event(total_tickets=1)
    with caplog.at_level(logging.DEBUG, logger="django"):
        for _ in range(2):
            response = Client().post(
                "/api/bookings/",
                {"event": event.pk, "tickets_booked": 1},
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {customer.token}",
            )
    assert response.status_code == 409
    assert not [record for record in caplog.records if record.name == "django.request"]
    assert logging.getLogger("django.request").isEnabledFor(logging.ERROR)


def _uuid7_time(value: uuid.UUID) -> dt.datetime:
    """The Unix time in milliseconds a UUIDv7 begins with."""
    return dt.datetime.fromtimestamp((value.int >> 80) / 1000, tz=dt.UTC)
