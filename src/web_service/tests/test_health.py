from __future__ import annotations

import pytest
from django.test import Client

from servicekit.health import run_checks

pytestmark = pytest.mark.django_db


def test_ready_is_the_database_alone() -> None:
    """The pages use no bus, so a broker that is down does not take them out of service."""
    assert [check.name for check in run_checks()] == ["database"]
    assert Client().get("/health/ready").status_code == 200
