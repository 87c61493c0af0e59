from __future__ import annotations

import uuid

import uuid_utils.compat
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

# The same in SQL, for messages written by a statement (the batched booking path): the
# 48-bit Unix time in milliseconds over the first six bytes of a random UUID, and its
# version nibble made 7 (RFC 9562; PostgreSQL 18's uuidv7() without requiring 18).
NEW_MESSAGE_ID_SQL = (
    "encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing "
    "substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) "
    "FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid"
)


def new_message_id() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): unique like a random UUID, but ordered by time, so the unique
    index on `message_id` grows at its right edge like a sequence's, where a random id lands
    on a random page of it, twice per message (its insert, and the relay's update, which is
    not HOT). A sale over a million stored bookings ran at 0.72 of its empty-database rate
    with random ids, at 0.79-1.02 with these (docs/performance/benchmark.md)."""
    return uuid_utils.compat.uuid7()  # the standard library's UUID, as every encoder knows it


class OutboxMessage(models.Model):
    """One domain message waiting for (or done with) publication.

    `id` orders messages as they were committed-ish (a sequence, so concurrent writers may
    interleave); `message_id` is the envelope id and the broker's de-duplication key.
    """

    message_id = models.UUIDField(default=new_message_id, unique=True, editable=False)
    type = models.CharField(max_length=64)
    producer = models.CharField(max_length=64)
    version = models.PositiveSmallIntegerField(default=1)
    occurred_at = models.DateTimeField()
    data = models.JSONField(encoder=DjangoJSONEncoder)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    # A message the broker refuses (while it takes others) waits here before its next
    # attempt (empty: due now); after the relay's last attempt it is given up: `failed_at`.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "outbox_messages"
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["id"], name="outbox_unsent_idx", condition=models.Q(sent_at__isnull=True)
            ),
            # The relay's pruning finds the oldest sent rows here, without reading the
            # rows it keeps.
            models.Index(
                fields=["sent_at"],
                name="outbox_sent_idx",
                condition=models.Q(sent_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.message_id}"
