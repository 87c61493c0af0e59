"""Fixtures of the booking service's tests: settings that keep tests independent of each
other (callers and tokens come from servicekit.pytest_fixtures)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _no_listing_cache(settings: Any) -> None:
    # Tests see their own writes at once; test_list_cache turns the cache back on.
    settings.BOOKING_EVENT_LIST_CACHE_SECONDS = 0


@pytest.fixture(autouse=True)
def _no_rate_limits(settings: Any) -> None:
    # Tests book and pay far faster than a buyer; test_rate_limits turns the limits on.
    settings.RATE_LIMIT_BOOKING_PER_USER = None
    settings.RATE_LIMIT_BOOKING_PER_ADDRESS = None
    settings.RATE_LIMIT_PAYMENT_PER_USER = None
    settings.RATE_LIMIT_PAYMENT_PER_ADDRESS = None
