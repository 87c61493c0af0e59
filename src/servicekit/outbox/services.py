from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from servicekit.outbox.models import OutboxEvent

NOTIFY_CHANNEL = "outbox"


def outbox_emit(
    *, event_type: str, data: Mapping[str, Any], producer: str | None = None, version: int = 1
) -> OutboxEvent:
    """Record a domain event in the caller's transaction.

    Must run inside `transaction.atomic()` together with the change it describes: the event
    exists if and only if the change committed. The NOTIFY is delivered at commit and wakes
    the relay without polling delay.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("outbox_emit must run inside the transaction of the change")
    event = OutboxEvent.objects.create(
        type=event_type,
        producer=producer or settings.SERVICE_NAME,
        version=version,
        occurred_at=timezone.now(),
        data=dict(data),
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
    return event


def outbox_emit_many(
    *, events: list[tuple[str, Mapping[str, Any]]], producer: str | None = None
) -> list[OutboxEvent]:
    """`outbox_emit` for many events at once: one INSERT and one NOTIFY (the batched
    booking path writes a whole batch's events this way)."""
    if not connection.in_atomic_block:
        raise RuntimeError("outbox_emit_many must run inside the transaction of the change")
    if not events:
        return []
    now = timezone.now()
    rows = OutboxEvent.objects.bulk_create(
        [
            OutboxEvent(
                type=event_type,
                producer=producer or settings.SERVICE_NAME,
                occurred_at=now,
                data=dict(data),
            )
            for event_type, data in events
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
    return rows


def outbox_envelope(event: OutboxEvent) -> dict[str, Any]:
    return {
        "id": str(event.event_id),
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat(),
        "producer": event.producer,
        "version": event.version,
        "data": event.data,
    }
