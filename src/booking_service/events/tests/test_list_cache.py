from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from booking_service.api import events as apis
from booking_service.testing import make_event
from servicekit.microcache import MicroCache


@pytest.fixture
def cached_listing(settings: Any) -> Any:
    settings.BOOKING_EVENT_LIST_CACHE_SECONDS = 60
    apis._event_pages.clear()
    yield
    apis._event_pages.clear()


@pytest.mark.django_db
@pytest.mark.usefixtures("cached_listing")
def test_a_page_is_served_from_memory_for_its_cache_time() -> None:
    make_event(name="First")
    client = APIClient()
    first = client.get("/api/events/?page_size=50")
    assert [e["name"] for e in first.json()["results"]] == ["First"]
    make_event(name="Second")
    with CaptureQueriesContext(connection) as queries:
        again = client.get("/api/events/?page_size=50")
    assert again.content == first.content
    assert len(queries) == 0
    # Another query is another page; a cleared (expired) entry is computed afresh.
    assert client.get("/api/events/?page_size=49").json()["count"] == 2
    apis._event_pages.clear()
    assert client.get("/api/events/?page_size=50").json()["count"] == 2


def test_entries_expire() -> None:
    clock = [0.0]
    cache = MicroCache(clock=lambda: clock[0])
    cache.set("k", b"v", 1.0)
    assert cache.get("k") == b"v"
    clock[0] = 1.01
    assert cache.get("k") is None
    cache.set("k", b"v", 0)
    assert cache.get("k") is None


@pytest.mark.django_db
@pytest.mark.usefixtures("cached_listing")
def test_bad_filters_are_never_cached() -> None:
    client = APIClient()
    assert client.get("/api/events/?date_from=nope").status_code == 400
    assert client.get("/api/events/?date_from=nope").status_code == 400
