"""Factories for test data (used by the tests and nothing else)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django.utils import timezone

from booking_service.api.batched import BatchedBookings
from booking_service.bookings.batching.batcher import TicketBatcher
from booking_service.bookings.batching.database import execute_batch
from booking_service.bookings.models import Booking
from booking_service.events.models import Event
from booking_service.events.services import event_create
from booking_service.payments.models import Payment
from booking_service.resources.models import Resource
from booking_service.resources.services import resource_create
from servicekit.outbox.models import OutboxMessage
from servicekit.testing import Caller


def make_event(
    *,
    organizer_id: uuid.UUID | None = None,
    total_tickets: int = 100,
    price: str = "25.00",
    starts_in: dt.timedelta = dt.timedelta(days=7),
    name: str = "Concert",
    location: str = "Main Hall",
    **extra: Any,
) -> Event:
    starts_at = (timezone.now() + starts_in).astimezone(dt.UTC).replace(microsecond=0)
    return event_create(
        organizer_id=organizer_id or uuid.uuid4(),
        name=name,
        description=extra.pop("description", "A test event"),
        date=starts_at.date(),
        time=starts_at.time(),
        location=location,
        total_tickets=total_tickets,
        price_per_ticket=Decimal(price),
        currency="USD",
    )


def make_resource(
    *,
    organizer_id: uuid.UUID | None = None,
    timezone_name: str = "UTC",
    opening: dt.time = dt.time(8, 0),
    closing: dt.time = dt.time(20, 0),
    slot_minutes: int = 60,
    price: str = "40.00",
) -> Resource:
    return resource_create(
        organizer_id=organizer_id or uuid.uuid4(),
        currency="USD",
        name="Court 1",
        description="Clay court",
        location="Sports park",
        timezone=timezone_name,
        opening_time=opening,
        closing_time=closing,
        slot_minutes=slot_minutes,
        price_per_slot=Decimal(price),
    )


def next_slot(
    *, days: int = 2, hour: int = 10, hours: int = 1, tz: dt.tzinfo = dt.UTC
) -> tuple[dt.datetime, dt.datetime]:
    day = (timezone.now() + dt.timedelta(days=days)).astimezone(tz).date()
    start = dt.datetime.combine(day, dt.time(hour, 0), tzinfo=tz)
    return start, start + dt.timedelta(hours=hours)


def database_rows() -> list[tuple[Any, ...]]:
    """What any booking API could change: equal before and after a refused request."""
    return [
        *Event.objects.order_by("id").values_list(
            "id", "name", "location", "available_tickets", "total_tickets", "updated_at"
        ),
        *Resource.objects.order_by("id").values_list("id", "name", "timezone", "updated_at"),
        *Booking.objects.order_by("id").values_list("id", "status", "tickets_booked", "updated_at"),
        *Payment.objects.order_by("id").values_list("id", "status", "updated_at"),
        *OutboxMessage.objects.order_by("message_id").values_list("message_id"),
    ]


PROBLEM = "application/problem+json"


def problem(response: Any, status: int) -> dict[str, Any]:
    """The problem+json body of an answer that must have this status."""
    assert response.status_code == status, response.content  # noqa: S101 (a test helper)
    assert response["Content-Type"] == PROBLEM  # noqa: S101
    return dict(response.json())


def batched_view(regular: Callable[..., HttpResponse]) -> BatchedBookings:
    """The batched bookings view in front of `regular`, with a batcher of its own (as in
    another process)."""
    return BatchedBookings(regular, TicketBatcher(execute_batch))


class RegularPath:
    """Stands for the regular view behind the batched one and counts what reached it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.calls += 1
        return HttpResponse(status=299)


def post_json(
    caller: Caller, body: Any, *, path: str = "/api/bookings/", **headers: str
) -> HttpRequest:
    """A JSON POST by `caller` (a string body goes as it is)."""
    data = body if isinstance(body, str) else json.dumps(body)
    meta: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {caller.token}", **headers}
    return RequestFactory().post(path, data=data, content_type="application/json", **meta)
