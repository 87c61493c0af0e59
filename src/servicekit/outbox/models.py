from __future__ import annotations

import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class OutboxMessage(models.Model):
    """One domain message waiting for (or done with) publication.

    `id` orders messages as they were committed-ish (a sequence, so concurrent writers may
    interleave); `message_id` is the envelope id and the broker's de-duplication key.
    """

    message_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
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
