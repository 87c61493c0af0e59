"""`GET /api/events/mine/`: an organizer's own events, the ones the public list leaves out
(sold out, canceled, past) included."""

from __future__ import annotations

import datetime as dt

import pytest

from booking_service.actions.events import event_cancel
from booking_service.events.models import Event
from booking_service.testing import make_event
from servicekit.testing import Caller

pytestmark = pytest.mark.django_db


def test_an_organizer_lists_their_own_events_of_every_status_latest_first(
    organizer: Caller, other_organizer: Caller
) -> None:
    on_sale = make_event(organizer_id=organizer.id, name="On sale", starts_in=dt.timedelta(days=3))
    sold_out = make_event(organizer_id=organizer.id, name="Sold out", total_tickets=1)
    Event.objects.filter(pk=sold_out.pk).update(available_tickets=0)
    canceled = make_event(organizer_id=organizer.id, name="Canceled", starts_in=dt.timedelta(1))
    event_cancel(event_id=canceled.pk)
    past = make_event(organizer_id=organizer.id, name="Past", starts_in=dt.timedelta(hours=2))
    Event.objects.filter(pk=past.pk).update(date=past.date - dt.timedelta(days=2))
    make_event(organizer_id=other_organizer.id, name="Someone else's")

    response = organizer.client().get("/api/events/mine/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 4
    assert [e["id"] for e in body["results"]] == [sold_out.pk, on_sale.pk, canceled.pk, past.pk]
    assert {e["status"] for e in body["results"]} == {"active", "canceled"}
    public = organizer.client().get("/api/events/").json()
    listed = {e["id"] for e in public["results"]}
    assert on_sale.pk in listed
    assert not listed & {sold_out.pk, canceled.pk, past.pk}


def test_customers_have_no_events_of_their_own_to_list(customer: Caller) -> None:
    response = customer.client().get("/api/events/mine/")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"


def test_anonymous_callers_are_asked_to_sign_in() -> None:
    from rest_framework.test import APIClient

    assert APIClient().get("/api/events/mine").status_code == 401
