from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class IdempotencyKey(models.Model):
    """A client's `Idempotency-Key` for one endpoint, and the response it produced.

    A row commits with the change it stands for: with its answer (`response_*`), or, for a
    request that calls out between two transactions, first with its `recovery_point` (what
    its first phase created) and later with its answer.
    """

    owner = models.CharField(max_length=64)
    endpoint = models.CharField(max_length=200)
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    response_content_type = models.CharField(max_length=100, blank=True, default="")
    recovery_point = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "idempotency_keys"
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "endpoint", "key"], name="idempotency_key_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.key}"

    @property
    def completed(self) -> bool:
        return self.response_status is not None
