"""Concurrent scans of one ticket, on real threads with their own database connections."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from booking_service.tickets.models import CheckIn
from booking_service.tickets.tests.conftest import scan
from servicekit.testing import Caller, all_at_once

SCANNERS = 8


@pytest.mark.django_db(transaction=True)
def test_concurrent_scans_check_a_ticket_in_once(
    confirmed: Callable[..., dict[str, Any]], organizer: Caller
) -> None:
    ticket = confirmed(tickets=1)["tickets"][0]
    answers = all_at_once(SCANNERS, lambda: scan(organizer, ticket["code"]))
    assert len(answers) == SCANNERS
    assert Counter(a.status_code for a in answers) == {201: 1, 409: SCANNERS - 1}
    first = next(a.json() for a in answers if a.status_code == 201)
    for refused in (a.json() for a in answers if a.status_code == 409):
        assert refused["type"] == "urn:problem:already-checked-in"
        assert refused["checked_in_at"] == first["checked_in_at"]
    assert CheckIn.objects.filter(ticket_id=ticket["id"]).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_scan_uploaded_many_times_at_once_is_one_check_in(
    confirmed: Callable[..., dict[str, Any]], organizer: Caller
) -> None:
    ticket = confirmed(tickets=1)["tickets"][0]
    answers = all_at_once(SCANNERS, lambda: scan(organizer, ticket["code"], "one-scan-nonce"))
    assert [a.status_code for a in answers] == [201] * SCANNERS
    assert len({a.content for a in answers}) == 1
    assert CheckIn.objects.filter(ticket_id=ticket["id"]).count() == 1
