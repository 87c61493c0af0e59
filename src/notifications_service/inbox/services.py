from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from notifications_service.inbox.models import DeadLetter, ProcessedMessage
from servicekit.messages import IncomingEnvelope, decode_envelope
from servicekit.retention import PRUNE_LIMIT, delete_older_than, retention

Handler = Callable[[IncomingEnvelope], None]


def processed_message_claim(*, consumer: str, message_id: uuid.UUID, message_type: str) -> bool:
    """Record that `consumer` handles `message_id` in the current transaction.

    True the first time; False when the message was already handled (the caller then does
    nothing). A concurrent claim of the same message waits for the first transaction.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("processed_message_claim must run in the handler's transaction")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO inbox_processedmessage (consumer, message_id, message_type, processed_at)
            VALUES (%s, %s, %s, now())
            ON CONFLICT (consumer, message_id) DO NOTHING
            RETURNING id
            """,
            [consumer, message_id, message_type],
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
    message_id: str = "",
    message_type: str = "",
) -> DeadLetter:
    return DeadLetter.objects.create(
        consumer=consumer,
        subject=_storable(subject)[:255],
        payload=_storable(payload.decode("utf-8", errors="replace")),
        error=_storable(error)[:10_000],
        deliveries=deliveries,
        stream_sequence=stream_sequence,
        message_id=_storable(message_id)[:64],
        message_type=_storable(message_type)[:64],
    )


def _storable(text: str) -> str:
    # PostgreSQL text cannot hold NUL; a message that carries one must still be recorded.
    return text.replace("\x00", "\\x00")


def message_handle(*, consumer: str, handler: Handler, envelope: IncomingEnvelope) -> bool:
    """Run `handler` once per (consumer, message), in one transaction with the claim.

    False if the message had already been handled (nothing is done).
    """
    with transaction.atomic():
        if not processed_message_claim(
            consumer=consumer, message_id=envelope.id, message_type=envelope.type
        ):
            return False
        handler(envelope)
    return True


def dead_letter_retry(*, dead_letter: DeadLetter, handler: Handler) -> bool:
    """Run a dead letter's message through its consumer's handler again (after a fix).

    On success the dead letter is deleted and True returned; on failure its error is
    replaced by the new one and False returned.
    """
    try:
        envelope = decode_envelope(dead_letter.payload.encode())
        message_handle(consumer=dead_letter.consumer, handler=handler, envelope=envelope)
    except Exception as exc:  # whatever it is, the letter stays with the new error
        dead_letter.error = f"retry failed: {type(exc).__name__}: {exc}"[:10_000]
        dead_letter.save(update_fields=["error"])
        return False
    dead_letter.delete()
    return True


def processed_messages_prune(
    *,
    consumer: str | None = None,
    older_than: timedelta | None = None,
    now: datetime | None = None,
    limit: int = PRUNE_LIMIT,
) -> int:
    """Delete the processed-message ids (of `consumer`, or of every consumer) older than
    `older_than` (`PROCESSED_MESSAGE_RETENTION_SECONDS` by default), at most `limit`; how
    many. A message whose id is gone would be handled again if it came back: the retention
    outlives every redelivery (docs/operations/retention.md)."""
    keep = older_than or retention("PROCESSED_MESSAGE_RETENTION_SECONDS", 35 * 24 * 3600)
    processed = ProcessedMessage.objects.all()
    if consumer is not None:
        processed = processed.filter(consumer=consumer)
    return delete_older_than(
        processed, field="processed_at", cutoff=(now or timezone.now()) - keep, limit=limit
    )
