"""Rate limits on booking creation (both paths) and on payment attempts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory

from booking_service.bookings.batching.batcher import Ask
from booking_service.bookings.batching.database import execute_batch
from booking_service.bookings.models import Booking
from booking_service.events.models import Event
from booking_service.payments.models import Payment
from booking_service.testing import batched_view, make_event
from servicekit.models import CacheEntry
from servicekit.testing import Caller, all_at_once

PROXY = "10.0.0.1"


class RegularView:
    """The rest of the stack behind the flash-sale path; records what reached it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, request: Any) -> HttpResponse:
        self.calls += 1
        return HttpResponse(status=299)


Book = Callable[..., HttpResponse]


@pytest.fixture(params=["regular", "fast"])
def book(request: pytest.FixtureRequest, settings: Any) -> Book:
    """POST /api/bookings/ through the regular view (the flash-sale path off) or through
    the flash-sale path alone (anything it handed on would answer 299)."""
    if request.param == "regular":
        settings.BOOKING_FAST_PATH = False

        def regular(caller: Caller, event: Event, **meta: Any) -> HttpResponse:
            response: Any = Client().post(
                "/api/bookings/",
                {"event": event.pk, "tickets_booked": 1},
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {caller.token}",
                **meta,
            )
            return response

        return regular
    middleware = batched_view(RegularView())

    def fast(caller: Caller, event: Event, **meta: Any) -> HttpResponse:
        return middleware(
            RequestFactory().post(
                "/api/bookings/",
                data=json.dumps({"event": event.pk, "tickets_booked": 1}),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {caller.token}",
                **meta,
            )
        )

    return fast


def assert_limited(response: HttpResponse) -> None:
    assert response.status_code == 429, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert json.loads(response.content)["type"] == "urn:problem:rate-limited"
    # A sliding window of an hour: the refused attempts weigh on into the next window.
    assert 1 <= int(response["Retry-After"]) <= 2 * 3600


@pytest.mark.django_db
def test_a_user_past_the_limit_is_refused_and_nothing_changes(
    book: Book, customer: Caller, other_customer: Caller, settings: Any
) -> None:
    settings.RATE_LIMIT_BOOKING_PER_USER = "2/h"
    event = make_event(total_tickets=100)
    assert [book(customer, event).status_code for _ in range(2)] == [201, 201]
    assert_limited(book(customer, event))
    event.refresh_from_db()
    assert event.available_tickets == 98
    assert Booking.objects.count() == 2
    assert book(other_customer, event).status_code == 201


@pytest.mark.django_db
def test_buyers_behind_one_address_share_only_its_generous_ceiling(
    book: Book, new_caller: Callable[[str], Caller], settings: Any
) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    settings.RATE_LIMIT_BOOKING_PER_USER = "2/h"
    settings.RATE_LIMIT_BOOKING_PER_ADDRESS = "5/h"
    event = make_event(total_tickets=100)
    nat = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "203.0.113.5"}
    first, second, third = (new_caller("customer") for _ in range(3))
    # Two buyers behind one NAT each get their own full per-user budget...
    codes = [book(buyer, event, **nat).status_code for buyer in (first, second) for _ in "ab"]
    assert codes == [201] * 4
    assert book(third, event, **nat).status_code == 201
    # ...until the address reaches its ceiling, which refuses even a fresh buyer there,
    assert_limited(book(new_caller("customer"), event, **nat))
    # but not the same buyers elsewhere.
    elsewhere = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": "198.51.100.7"}
    assert book(third, event, **elsewhere).status_code == 201
    assert Booking.objects.count() == 6


@pytest.mark.django_db
def test_off_disables_a_limit(book: Book, customer: Caller, settings: Any) -> None:
    settings.RATE_LIMIT_BOOKING_PER_USER = None
    settings.RATE_LIMIT_BOOKING_PER_ADDRESS = None
    event = make_event(total_tickets=100)
    assert [book(customer, event).status_code for _ in range(6)] == [201] * 6
    assert not CacheEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_burst_is_judged_as_a_burst(
    book: Book, customer: Caller, settings: Any
) -> None:
    settings.RATE_LIMIT_BOOKING_PER_USER = "3/h"
    event = make_event(total_tickets=100)
    burst = 10
    codes = all_at_once(burst, lambda: book(customer, event).status_code)
    assert sorted(codes) == [201] * 3 + [429] * (burst - 3)
    assert Booking.objects.count() == 3


@pytest.mark.django_db
def test_payment_attempts_are_limited_per_user_and_per_address(
    customer: Caller, other_customer: Caller, new_caller: Callable[[str], Caller], settings: Any
) -> None:
    settings.RATE_LIMIT_PAYMENT_PER_USER = "2/h"
    settings.RATE_LIMIT_PAYMENT_PER_ADDRESS = "3/h"

    def pay(caller: Caller, address: str) -> HttpResponse:
        response: HttpResponse = caller.client().post(
            "/api/payments/",
            {"booking": 999999, "payment_token": "tok_visa"},
            format="json",
            REMOTE_ADDR=address,
        )
        return response

    assert [pay(customer, "192.0.2.1").status_code for _ in range(2)] == [404, 404]
    assert_limited(pay(customer, "192.0.2.2"))  # the user's limit, from any address
    assert pay(other_customer, "192.0.2.1").status_code == 404
    assert_limited(pay(other_customer, "192.0.2.1"))  # the address's ceiling
    assert pay(new_caller("customer"), "192.0.2.3").status_code == 404
    assert not Payment.objects.exists()


@pytest.mark.django_db
def test_payment_limits_off(customer: Caller, settings: Any) -> None:
    settings.RATE_LIMIT_PAYMENT_PER_USER = None
    settings.RATE_LIMIT_PAYMENT_PER_ADDRESS = None
    client = customer.client()
    for _ in range(12):
        response = client.post(
            "/api/payments/", {"booking": 999999, "payment_token": "tok_visa"}, format="json"
        )
        assert response.status_code == 404


@pytest.mark.django_db
def test_one_batch_is_counted_in_arrival_order(customer: Caller, settings: Any) -> None:
    """A user's asks in one batch statement: the first ones within the limit are granted,
    the rest refused, and the refused ones take nothing."""
    settings.RATE_LIMIT_BOOKING_PER_USER = "3/h"
    event = make_event(total_tickets=100)
    other = uuid.uuid4()
    batch = [
        Ask(tickets=1, user_id=customer.id, address="192.0.2.1"),
        Ask(tickets=1, user_id=customer.id, address="192.0.2.1"),
        Ask(tickets=1, user_id=other, address="192.0.2.1"),
        Ask(tickets=1, user_id=customer.id, address="192.0.2.2"),
        Ask(tickets=1, user_id=customer.id, address="192.0.2.1"),
        Ask(tickets=1, user_id=other, address="192.0.2.1"),
    ]
    kinds = [type(outcome).__name__ for outcome in execute_batch(event.pk, batch).outcomes]
    assert kinds == ["Booking"] * 4 + ["RateLimited", "Booking"]
    event.refresh_from_db()
    assert event.available_tickets == 95


@pytest.mark.django_db
def test_a_request_handed_on_by_the_fast_path_is_counted_once(
    customer: Caller, settings: Any
) -> None:
    """An unknown event: the batched path counts the attempt, the regular view answers."""
    settings.RATE_LIMIT_BOOKING_PER_USER = "2/h"
    client = customer.client()
    unknown = {"event": 999999, "tickets_booked": 1}
    codes = [client.post("/api/bookings/", unknown, format="json").status_code for _ in "abc"]
    assert codes == [404, 404, 429]


@pytest.mark.django_db
def test_a_limited_answer_is_not_kept_as_the_idempotent_answer(
    customer: Caller, settings: Any
) -> None:
    """A 429 says "come back later": the retry with the same Idempotency-Key, once the limit
    allows it, runs the request instead of replaying the 429 for the key's lifetime."""
    settings.RATE_LIMIT_PAYMENT_PER_USER = "1/h"
    client = customer.client()

    def pay(key: str) -> HttpResponse:
        response: HttpResponse = client.post(
            "/api/payments/",
            {"booking": 999999, "payment_token": "tok_visa"},
            format="json",
            HTTP_IDEMPOTENCY_KEY=key,
        )
        return response

    assert pay("first").status_code == 404
    assert_limited(pay("second"))
    settings.RATE_LIMIT_PAYMENT_PER_USER = None  # the window has passed, say
    retried = pay("second")
    assert retried.status_code == 404
    assert "Idempotent-Replayed" not in retried
