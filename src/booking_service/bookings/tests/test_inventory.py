"""The inventory module's own rules: the lock, the on-sale rule, the counter."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from booking_service.bookings import inventory
from booking_service.events.models import Event, EventStatus
from booking_service.testing import make_event
from servicekit.problems import Conflict


@pytest.mark.django_db(transaction=True)
def test_lock_event_refuses_to_run_outside_a_transaction() -> None:
    event = make_event()
    with pytest.raises(RuntimeError, match="outside a transaction"):
        inventory.lock_event(event.pk)
    with transaction.atomic():
        assert inventory.lock_event(event.pk)
        assert not inventory.lock_event(event.pk + 1000)


@pytest.mark.django_db
def test_the_on_sale_rule_is_one_rule_in_sql_the_orm_and_python() -> None:
    """Active and not started, judged alike by the three renderings, at the same moment."""
    now = timezone.now()
    soon = make_event(starts_in=dt.timedelta(hours=1))
    started = make_event(starts_in=dt.timedelta(hours=1))
    Event.objects.filter(pk=started.pk).update(date=(now - dt.timedelta(days=1)).date())
    canceled = make_event(starts_in=dt.timedelta(days=3))
    Event.objects.filter(pk=canceled.pk).update(status=EventStatus.CANCELED)
    ids = [soon.pk, started.pk, canceled.pk]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {inventory.EVENTS} "  # noqa: S608
            f"WHERE id = ANY(%s) AND {inventory.on_sale_sql(now='%s')}",
            [ids, now],
        )
        by_sql = {row[0] for row in cursor.fetchall()}
    by_orm = set(
        Event.objects.filter(inventory.on_sale(now), pk__in=ids).values_list("pk", flat=True)
    )
    by_python = {event.pk for event in Event.objects.filter(pk__in=ids) if event.is_on_sale(now)}
    assert by_sql == by_orm == by_python == {soon.pk}


@pytest.mark.django_db
def test_starts_at_is_the_date_and_time_in_utc() -> None:
    event = make_event(starts_in=dt.timedelta(days=2))
    event.refresh_from_db()
    assert event.starts_at == dt.datetime.combine(event.date, event.time, tzinfo=dt.UTC)


@pytest.mark.django_db
def test_tickets_are_taken_only_from_an_event_on_sale() -> None:
    event = make_event(total_tickets=5)
    with transaction.atomic():
        taken = inventory.take_tickets(event_id=event.pk, tickets=3)
        assert taken is not None
        assert taken.available_tickets == 2
        assert inventory.take_tickets(event_id=event.pk, tickets=3) is None
    Event.objects.filter(pk=event.pk).update(status=EventStatus.CANCELED)
    with transaction.atomic():
        assert inventory.take_tickets(event_id=event.pk, tickets=1) is None
    event.refresh_from_db()
    assert event.available_tickets == 2


def test_the_total_cannot_go_below_what_is_taken(settings: Any) -> None:
    event = Event(total_tickets=10, available_tickets=4)
    with pytest.raises(Conflict) as refused:
        inventory.set_total_tickets(event, 5)
    assert refused.value.extra == {"taken_tickets": 6}
    inventory.set_total_tickets(event, 8)
    assert (event.total_tickets, event.available_tickets) == (8, 2)


@pytest.mark.django_db(transaction=True)
def test_taking_tickets_updates_the_event_row_in_place() -> None:
    """No index names the counter, so taking tickets is a HOT update: a sale adds no index
    entries per batch (the events listing's index once named it, and every update did)."""

    def hot_and_all() -> tuple[int, int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_force_next_flush()")
        with connection.cursor() as cursor:  # the flush happens after the statement
            cursor.execute(
                "SELECT n_tup_hot_upd, n_tup_upd FROM pg_stat_user_tables WHERE relname = %s",
                [inventory.EVENTS],
            )
            hot, updated = cursor.fetchone()
        return int(hot), int(updated)

    event = make_event(total_tickets=100)
    hot_before, updated_before = hot_and_all()
    for _ in range(20):
        with transaction.atomic():
            assert inventory.take_tickets(event_id=event.pk, tickets=1) is not None
    hot, updated = hot_and_all()
    assert updated - updated_before == 20
    assert hot - hot_before >= 18  # a full page may force one or two elsewhere
