"""Fixtures of the booking service's tests: real signed tokens verified against a JWKS
served over real HTTP, and API clients for each role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from booking_service.testing import Caller, make_caller
from servicekit.testing import TestTokenIssuer


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


@pytest.fixture
def new_caller(token_issuer: TestTokenIssuer) -> Callable[[str], Caller]:
    def make(role: str = "customer") -> Caller:
        return make_caller(token_issuer, role)

    return make
