"""The batched booking path answers by itself, before the views; its answers carry the same
security headers as every other response (servicekit/tests/test_headers.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from booking_service.testing import make_event
from servicekit.testing import Caller

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@pytest.mark.django_db
def test_fast_path_answers_carry_the_security_headers(settings: Any, customer: Caller) -> None:
    settings.BOOKING_FAST_PATH = True
    event = make_event(total_tickets=2)
    responses = [
        Client().post(
            "/api/bookings/",
            json.dumps({"event": event.pk, "tickets_booked": tickets}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {customer.token}",
        )
        for tickets in (2, 1)  # a hold, then sold out
    ]
    assert [r.status_code for r in responses] == [201, 409]
    for response in responses:
        # Answered by the fast path: a DRF view would have added `Allow`.
        assert "Allow" not in response
        assert {name: response.get(name) for name in SECURITY_HEADERS} == SECURITY_HEADERS
