"""`POST /api/bookings/`, routed here: plain ticket holds go through the batcher, and every
other request to the path goes to the regular view.

In an on-sale, thousands of buyers want the same inventory row. Taken one by one, every
booking holds that row's lock through its own commit and fsync, so the row admits one
booking per fsync whatever the hardware. Here, concurrent holds of one event in one process
share one transaction (`booking_service.bookings.batching`).

The guarantees are the regular view's: the inventory row is locked and the database's
`CHECK (available_tickets >= 0)` still refuses an oversell; a 201 is sent only after the
commit; the booking and its `booking.created` message commit together; a customer's pending
holds of one event stay within `BOOKING_MAX_HELD_TICKETS`; the rate limits are the same
counters. So are the answers: authentication is `servicekit.auth.bearer_principal`, the body
is read by `servicekit.parsers` (the same limits on size, depth, numbers and text), a
booking is shown by `booking_representation`, and refusals are the regular path's problems
(`inventory.sold_out`, `inventory.hold_limit_reached`, the rate limit's 429).

Sold out is remembered for `BOOKING_SOLDOUT_CACHE_SECONDS` (and never past the expiry of
the first pending hold), so the sold-out stampede after an on-sale is answered without the
database; tickets released by a cancelation show up at most that much later, as if that
buyer had come a moment later.

Anything else goes to the regular view, which explains it: an `Idempotency-Key`, other or
malformed fields, a missing or bad token, an unknown, canceled or started event, a refusal
while expired holds wait to be released.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from booking_service.api.bookings import COUNTED_ATTRIBUTE, booking_representation
from booking_service.bookings import inventory
from booking_service.bookings.batching.batcher import SoldOut, TicketBatcher
from booking_service.bookings.batching.database import Outcome, execute_batch
from booking_service.bookings.models import Booking
from servicekit import parsers
from servicekit.auth import InvalidTokenError, bearer_principal
from servicekit.clients import client_address
from servicekit.problems import Problem, error_response

MAX_ID = parsers.INT64_MAX  # a bigint key

_batcher: TicketBatcher[Outcome] = TicketBatcher(execute_batch)


class BatchedBookings:
    """The view routed at the bookings collection: `regular` (a DRF view, whose schema it
    keeps) answers everything the batcher does not."""

    def __init__(
        self,
        regular: Callable[..., HttpResponse],
        batcher: TicketBatcher[Outcome] | None = None,
    ) -> None:
        functools.update_wrapper(self, regular)  # its schema class, csrf_exempt, name
        self.regular = regular
        self.batcher = batcher or _batcher

    def __call__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST" and settings.BOOKING_FAST_PATH:
            response = self._batched(request)
            if response is not None:
                return response
        return self.regular(request, *args, **kwargs)

    def _batched(self, request: HttpRequest) -> HttpResponse | None:
        ask = _plain_hold(request)
        if ask is None:
            return None
        event_id, tickets, user_id = ask
        try:
            outcome = self.batcher.book(
                event_id=event_id,
                tickets=tickets,
                user_id=user_id,
                address=client_address(request),
            )
        except DatabaseError as exc:
            outcome = exc
        if outcome is None:
            setattr(request, COUNTED_ATTRIBUTE, True)
            return None
        if isinstance(outcome, Booking):
            return HttpResponse(
                orjson.dumps(booking_representation(outcome)),
                status=201,
                content_type="application/json",
            )
        if isinstance(outcome, SoldOut):
            outcome = inventory.sold_out(available=outcome.available, asked=tickets)
        return error_response(outcome)


def _plain_hold(request: HttpRequest) -> tuple[int, int, uuid.UUID] | None:
    """(event, tickets, customer) of a plain ticket hold: JSON `{"event": id,
    "tickets_booked": n}` within bounds, a valid bearer token, no `Idempotency-Key`. None
    for anything else, which the regular view answers or explains."""
    meta = request.META
    if "HTTP_IDEMPOTENCY_KEY" in meta or request.content_type != "application/json":
        return None
    try:
        body = parsers.loads(parsers.read_body(request))
    except Problem:
        return None
    if type(body) is not dict or body.keys() != {"event", "tickets_booked"}:
        return None
    event_id, tickets = body["event"], body["tickets_booked"]
    if type(event_id) is not int or type(tickets) is not int:
        return None
    if not (1 <= event_id <= MAX_ID and 1 <= tickets <= settings.BOOKING_MAX_TICKETS):
        return None
    try:
        principal = bearer_principal(meta.get("HTTP_AUTHORIZATION", "").encode("latin-1"))
        if principal is None:
            return None
        return event_id, tickets, uuid.UUID(principal.id)
    except (InvalidTokenError, ValueError):
        return None
