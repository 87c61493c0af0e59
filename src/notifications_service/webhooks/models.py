from __future__ import annotations

from django.db import models


class WebhookEndpoint(models.Model):
    """An organizer's URL that receives the messages about their events, signed with `secret`.

    The secret is shown once, when the endpoint is created; it is kept because every
    delivery is signed with it.
    """

    organizer_id = models.CharField(max_length=64, db_index=True)
    url = models.URLField(max_length=2000)
    secret = models.CharField(max_length=100)
    event_types = models.JSONField(default=list, blank=True)  # empty: every type
    description = models.CharField(max_length=200, blank=True, default="")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.url} ({self.organizer_id})"

    def wants(self, message_type: str) -> bool:
        return not self.event_types or message_type in self.event_types


class WebhookDelivery(models.Model):
    """One message for one endpoint: retried with backoff until the endpoint answers 2xx."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    message_id = models.UUIDField()
    message_type = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "message_id"], name="webhook_once_per_message"
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due_idx",
                condition=models.Q(status="pending"),
            ),
            # The dispatcher prunes delivered webhooks past their retention, oldest first.
            models.Index(
                fields=["delivered_at"],
                name="webhook_delivery_done_idx",
                condition=models.Q(status="succeeded"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_type} -> endpoint {self.endpoint_id}: {self.status}"


class WebhookAttempt(models.Model):
    """The log: every HTTP attempt of a delivery, with what came back."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    attempted_at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"attempt {self.pk} of delivery {self.delivery_id}: {self.status_code}"
