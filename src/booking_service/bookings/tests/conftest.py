"""Fixtures of the batched view's tests."""

from __future__ import annotations

from typing import Any

import pytest

from booking_service.api.batched import BatchedBookings
from booking_service.testing import RegularPath, batched_view


@pytest.fixture
def regular() -> RegularPath:
    return RegularPath()


@pytest.fixture
def middleware(regular: RegularPath, settings: Any) -> BatchedBookings:
    """The batched view in front of `regular`, remembering sold out for 1 s."""
    settings.BOOKING_SOLDOUT_CACHE_SECONDS = 1.0
    return batched_view(regular)
