from __future__ import annotations

import uuid

from django.db import connection

from notifications_service.inbox.models import DeadLetter


def processed_event_claim(*, consumer: str, event_id: uuid.UUID, event_type: str) -> bool:
    """Record that `consumer` handles `event_id` in the current transaction.

    True the first time; False when the event was already handled (the caller then does
    nothing). A concurrent claim of the same event waits for the first transaction.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("processed_event_claim must run in the handler's transaction")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO inbox_processedevent (consumer, event_id, event_type, processed_at)
            VALUES (%s, %s, %s, now())
            ON CONFLICT (consumer, event_id) DO NOTHING
            RETURNING id
            """,
            [consumer, event_id, event_type],
        )
        return cursor.fetchone() is not None


def dead_letter_record(
    *,
    consumer: str,
    subject: str,
    payload: bytes,
    error: str,
    deliveries: int,
    stream_sequence: int | None,
    event_id: str = "",
    event_type: str = "",
) -> DeadLetter:
    return DeadLetter.objects.create(
        consumer=consumer,
        subject=subject,
        payload=payload.decode("utf-8", errors="replace"),
        error=error[:10_000],
        deliveries=deliveries,
        stream_sequence=stream_sequence,
        event_id=event_id[:64],
        event_type=event_type[:64],
    )
