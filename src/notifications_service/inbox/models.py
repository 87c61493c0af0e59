from __future__ import annotations

from django.db import models


class ProcessedMessage(models.Model):
    """A message a consumer has handled; written in the handler's transaction.

    The unique constraint is what makes redelivery harmless: a second delivery of the same
    message to the same consumer finds the row (or waits for the first transaction and then
    finds it) and changes nothing.
    """

    consumer = models.CharField(max_length=64)
    message_id = models.UUIDField()
    message_type = models.CharField(max_length=64)
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["consumer", "message_id"], name="inbox_processed_once"),
        ]
        # Each consumer prunes its own ids past their retention, oldest first.
        indexes = [
            models.Index(fields=["consumer", "processed_at"], name="inbox_processed_age_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.consumer} {self.message_type} {self.message_id}"


class DeadLetter(models.Model):
    """A message a consumer gave up on, kept with the error for a person to look at."""

    consumer = models.CharField(max_length=64)
    message_id = models.CharField(max_length=64, blank=True, default="")
    message_type = models.CharField(max_length=64, blank=True, default="")
    subject = models.CharField(max_length=255)
    stream_sequence = models.BigIntegerField(null=True)
    deliveries = models.PositiveIntegerField(default=0)
    payload = models.TextField()
    error = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.consumer} {self.subject} #{self.stream_sequence}"
