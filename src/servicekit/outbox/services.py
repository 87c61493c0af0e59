from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from django.conf import settings
from django.db import connection
from django.utils import timezone

from servicekit.messages import Envelope, Message, message_to_builtins
from servicekit.outbox.models import OutboxMessage
from servicekit.retention import PRUNE_LIMIT, delete_older_than, retention

NOTIFY_CHANNEL = "outbox"


def outbox_emit(message: Message, *, producer: str | None = None) -> OutboxMessage:
    """Record a domain message in the caller's transaction.

    Must run inside `transaction.atomic()` together with the change it describes: the message
    exists if and only if the change committed. The row stores the model's encoding, so what
    the relay publishes is what the model allows. The NOTIFY is delivered at commit and wakes
    the relay without polling delay.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("outbox_emit must run inside the transaction of the change")
    row = OutboxMessage.objects.create(
        type=message.TYPE,
        producer=producer or settings.SERVICE_NAME,
        version=message.VERSION,
        occurred_at=timezone.now(),
        data=message_to_builtins(message),
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
    return row


def outbox_emit_many(
    messages: Sequence[Message], *, producer: str | None = None
) -> list[OutboxMessage]:
    """`outbox_emit` for many messages at once: one INSERT and one NOTIFY (a cancelation or
    an expiry round writes the messages of all its bookings this way)."""
    if not connection.in_atomic_block:
        raise RuntimeError("outbox_emit_many must run inside the transaction of the change")
    if not messages:
        return []
    now = timezone.now()
    rows = OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(
                type=message.TYPE,
                producer=producer or settings.SERVICE_NAME,
                version=message.VERSION,
                occurred_at=now,
                data=message_to_builtins(message),
            )
            for message in messages
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [NOTIFY_CHANNEL])
    return rows


class StoredMessage(Protocol):
    """What the envelope is made of: an `OutboxMessage`, or the relay's lighter row."""

    @property
    def message_id(self) -> uuid.UUID: ...
    @property
    def type(self) -> str: ...
    @property
    def producer(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def occurred_at(self) -> dt.datetime: ...
    @property
    def data(self) -> Any: ...


def outbox_envelope(row: StoredMessage) -> Envelope[dict[str, Any]]:
    """The envelope of a stored row: its `data` is the model's encoding, published as is."""
    return Envelope(
        id=row.message_id,
        type=row.type,
        occurred_at=row.occurred_at,
        producer=row.producer,
        version=row.version,
        data=row.data,
    )


def outbox_sent_prune(*, now: dt.datetime | None = None, limit: int = PRUNE_LIMIT) -> int:
    """Delete messages published more than `OUTBOX_SENT_RETENTION_SECONDS` ago, at most
    `limit`; how many. Unsent and given-up messages are never deleted."""
    cutoff = (now or timezone.now()) - retention("OUTBOX_SENT_RETENTION_SECONDS", 24 * 3600)
    return delete_older_than(
        OutboxMessage.objects.filter(sent_at__isnull=False),
        field="sent_at",
        cutoff=cutoff,
        limit=limit,
    )
