from __future__ import annotations

from django.db import models


class Notification(models.Model):
    """A message for one user, shown by `GET /api/notifications/` and possibly emailed.

    `source_message_id` is the domain message it was made from (or the `event_id` a caller of
    the API gave); one notification per user and message, whatever the redeliveries.
    """

    user_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    body = models.TextField()
    data = models.JSONField(default=dict, blank=True)
    source_message_id = models.UUIDField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user_id", "-created_at"], name="notification_user_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "source_message_id"],
                condition=models.Q(source_message_id__isnull=False),
                name="notification_once_per_message",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user_id}"


class EmailDelivery(models.Model):
    """The email of a notification, sent by the dispatcher, not by whoever made it.

    An outbox of its own: written in the notification's transaction, claimed by a dispatcher
    with a lease (`next_attempt_at` moves forward while one holds it), retried with capped
    exponential backoff while SMTP fails, marked `sent` once the server accepted it.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    notification = models.OneToOneField(
        Notification, on_delete=models.CASCADE, related_name="email_delivery"
    )
    to_email = models.EmailField(max_length=254, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="email_delivery_due_idx",
                condition=models.Q(status="pending"),
            ),
            # The dispatcher prunes sent emails past their retention, oldest first.
            models.Index(
                fields=["sent_at"],
                name="email_delivery_sent_idx",
                condition=models.Q(status="sent"),
            ),
        ]

    def __str__(self) -> str:
        return f"email {self.status} for notification {self.notification_id}"

    @property
    def message_id(self) -> str:
        # Stable across retries, so a mail client can drop a copy sent twice.
        return f"<notification-{self.notification_id}@turnstile.local>"
