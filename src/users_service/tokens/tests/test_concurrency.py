from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections

from users_service.accounts.models import User
from users_service.conftest import PASSWORD
from users_service.tokens import services
from users_service.tokens.models import RefreshToken


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def _in_thread(target: Callable[[], Any], errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            target()
        except BaseException as exc:  # reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("logout", ["everywhere", "this session"])
@pytest.mark.django_db(transaction=True)
def test_log_out_also_ends_a_refresh_in_flight(
    customer: User, monkeypatch: pytest.MonkeyPatch, logout: str
) -> None:
    pair = services.login(email=customer.email, password=PASSWORD, address="192.0.2.1")
    successor_written, go_on = threading.Event(), threading.Event()
    create = services._refresh_token_create

    def create_then_pause(**kwargs: Any) -> str:
        raw = create(**kwargs)
        successor_written.set()
        go_on.wait(10)  # still inside the rotation's transaction
        return raw

    monkeypatch.setattr(services, "_refresh_token_create", create_then_pause)
    errors: list[BaseException] = []
    rotation = _in_thread(lambda: services.refresh_rotate(refresh=pair.refresh), errors)
    assert successor_written.wait(10)

    def revoke() -> None:
        if logout == "everywhere":
            services.refresh_families_revoke(user_id=customer.pk)
        else:
            services.refresh_family_revoke(refresh=pair.refresh)

    revocation = _in_thread(revoke, errors)
    deadline = time.monotonic() + 10
    while not _waiting_on_a_lock():  # the revocation waits for the rotation
        assert time.monotonic() < deadline
        time.sleep(0.02)
    go_on.set()
    rotation.join(10)
    revocation.join(10)
    assert not errors
    assert RefreshToken.objects.count() == 2
    assert not RefreshToken.objects.filter(revoked_at__isnull=True).exists()
