"""No oversell and no double-booked slot under real concurrency: real threads, each with its
own PostgreSQL connection, and real service processes."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from django.conf import settings as django_settings
from django.db import connection

from booking_service.actions.sweeper import release_expired_holds
from booking_service.bookings.inventory import event_inventory
from booking_service.bookings.models import Booking, BookingStatus
from booking_service.bookings.services import booking_create_tickets
from booking_service.events.models import Event
from booking_service.testing import make_event, make_resource, next_slot
from servicekit.testing import Caller, current_database_url, free_port

T = TypeVar("T")

PROBLEM = "application/problem+json"


def run_concurrently(count: int, work: Callable[[int], T]) -> list[T]:
    """Run `work(i)` in `count` threads released at the same instant; each thread uses (and
    closes) its own database connection."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(30)
            results[index] = work(index)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    if errors:
        raise errors[0]
    return results


def assert_conserved(event_id: int) -> None:
    inventory = event_inventory(event_id=event_id)
    assert inventory is not None
    assert inventory.total == inventory.available + inventory.held + inventory.sold, inventory


def sold_out_event(total: int = 40, remaining: int = 30) -> Event:
    """An event with `remaining` tickets left (the rest already held)."""
    event = make_event(total_tickets=total)
    taken = total - remaining
    while taken > 0:
        step = min(taken, django_settings.BOOKING_MAX_TICKETS)
        booking_create_tickets(user_id=uuid.uuid4(), event_id=event.pk, tickets_booked=step)
        taken -= step
    return event


@pytest.mark.django_db(transaction=True)
def test_60_concurrent_buyers_for_30_tickets_get_exactly_30(
    new_caller: Callable[[str], Caller],
) -> None:
    event = sold_out_event(total=40, remaining=30)
    buyers = [new_caller("customer") for _ in range(60)]

    def buy(index: int) -> tuple[int, str, dict[str, Any]]:
        response = (
            buyers[index]
            .client()
            .post("/api/bookings/", {"event": event.pk, "tickets_booked": 1}, format="json")
        )
        return response.status_code, response["Content-Type"], response.json()

    results = run_concurrently(60, buy)

    statuses = Counter(status for status, _, _ in results)
    assert statuses == {201: 30, 409: 30}
    for status, content_type, body in results:
        if status == 409:
            assert content_type == PROBLEM
            assert body["type"] == "urn:problem:sold-out"
    event.refresh_from_db()
    assert event.available_tickets == 0
    assert Booking.objects.filter(event=event, user_id__in=[b.id for b in buyers]).count() == 30
    assert_conserved(event.pk)


@pytest.mark.django_db(transaction=True)
def test_20_concurrent_overlapping_slot_requests_one_wins(
    new_caller: Callable[[str], Caller],
) -> None:
    resource = make_resource(opening=dt.time(6), closing=dt.time(22), slot_minutes=30)
    start, _ = next_slot(hour=10)
    callers = [new_caller("customer") for _ in range(20)]

    def book(index: int) -> int:
        # Every request overlaps 10:30-11:00; they start and end at different times.
        slot_start = start + dt.timedelta(minutes=30 * (index % 3) - 30)
        slot_end = start + dt.timedelta(minutes=60 + 30 * (index % 4))
        body = {
            "resource": resource.pk,
            "start_time": slot_start.isoformat(),
            "end_time": slot_end.isoformat(),
        }
        return callers[index].client().post("/api/bookings/", body, format="json").status_code

    statuses = Counter(run_concurrently(20, book))
    assert statuses == {201: 1, 409: 19}
    assert Booking.objects.filter(resource=resource, status=BookingStatus.PENDING).count() == 1


@pytest.mark.django_db(transaction=True)
def test_mixed_workload_keeps_inventory_conserved_and_never_errors(
    new_caller: Callable[[str], Caller], settings: Any
) -> None:
    """Buyers, payers, cancelers, expiring holds and the sweeper at once: no 5xx, no
    deadlock, and conservation holds at every sample."""
    settings.BOOKING_HOLD_SECONDS = 1
    event = make_event(total_tickets=25)
    callers = [new_caller("customer") for _ in range(24)]
    stop = threading.Event()
    samples: list[tuple[int, int, int, int]] = []

    def watch() -> None:
        try:
            while not stop.is_set():
                inventory = event_inventory(event_id=event.pk)
                assert inventory is not None
                samples.append(
                    (inventory.total, inventory.available, inventory.held, inventory.sold)
                )
                release_expired_holds()
                time.sleep(0.02)
        finally:
            connection.close()

    watcher = threading.Thread(target=watch)
    watcher.start()

    def shop(index: int) -> list[int]:
        rng = random.Random(index)
        client = callers[index].client()
        codes = []
        for _ in range(4):
            response = client.post(
                "/api/bookings/",
                {"event": event.pk, "tickets_booked": rng.randint(1, 3)},
                format="json",
            )
            codes.append(response.status_code)
            if response.status_code != 201:
                continue
            booking_id = response.json()["id"]
            choice = rng.random()
            if choice < 0.4:
                paid = client.post(
                    "/api/payments/", {"booking": booking_id, "payment_token": "tok_visa"}
                )
                codes.append(paid.status_code)
                if rng.random() < 0.5:
                    codes.append(client.delete(f"/api/bookings/{booking_id}/").status_code)
            elif choice < 0.7:
                codes.append(client.delete(f"/api/bookings/{booking_id}/").status_code)
            else:
                time.sleep(rng.random() * 1.5)  # let some holds expire
        return codes

    try:
        results = run_concurrently(24, shop)
    finally:
        stop.set()
        watcher.join(30)
    codes = Counter(code for codes in results for code in codes)
    assert all(code < 500 for code in codes), codes
    assert codes[201] > 0
    assert samples
    for total, available, held, sold in samples:
        assert total == available + held + sold
    assert_conserved(event.pk)


# --- two service processes at once ------------------------------------------------------


@pytest.fixture
def two_service_processes(jwks_url: str) -> Iterator[list[str]]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": current_database_url(),
            "JWT_JWKS_URL": jwks_url,
            "DJANGO_SETTINGS_MODULE": "booking_service.settings",
            "DB_CONN_MAX_AGE": "0",
        }
    )
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "booking_service.wsgi:application", "--no-control-socket",
                "--bind", f"127.0.0.1:{port}",
                "--workers", "1", "--threads", "8", "--worker-class", "gthread",
                "--log-level", "warning",
            ],
            env=env,
        )
        for port in ports
    ]  # fmt: skip
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        deadline = time.monotonic() + 60
        for url in urls:
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/health/live", timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _http_post(url: str, body: dict[str, Any], token: str) -> tuple[int, str, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers["Content-Type"], json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], json.loads(exc.read())


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_service_processes_do_not_oversell(
    two_service_processes: list[str], new_caller: Callable[[str], Caller]
) -> None:
    event = sold_out_event(total=40, remaining=30)
    buyers = [new_caller("customer") for _ in range(60)]

    def buy(index: int) -> tuple[int, str, dict[str, Any]]:
        base = two_service_processes[index % 2]
        return _http_post(
            f"{base}/api/bookings/", {"event": event.pk, "tickets_booked": 1}, buyers[index].token
        )

    results = run_concurrently(60, buy)

    statuses = Counter(status for status, _, _ in results)
    assert statuses == {201: 30, 409: 30}
    assert all(ct == PROBLEM for status, ct, _ in results if status == 409)
    event.refresh_from_db()
    assert event.available_tickets == 0
    assert_conserved(event.pk)
    # Both processes sold tickets.
    winners = {index % 2 for index, (status, _, _) in enumerate(results) if status == 201}
    assert winners == {0, 1}
