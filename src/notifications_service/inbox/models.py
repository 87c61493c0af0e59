from __future__ import annotations

from django.db import models


class ProcessedEvent(models.Model):
    """An event a consumer has handled; written in the handler's transaction.

    The unique constraint is what makes redelivery harmless: a second delivery of the same
    event to the same consumer finds the row (or waits for the first transaction and then
    finds it) and changes nothing.
    """

    consumer = models.CharField(max_length=64)
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=64)
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["consumer", "event_id"], name="inbox_processed_once"),
        ]

    def __str__(self) -> str:
        return f"{self.consumer} {self.event_type} {self.event_id}"


class DeadLetter(models.Model):
    """A message a consumer gave up on, kept with the error for a person to look at."""

    consumer = models.CharField(max_length=64)
    event_id = models.CharField(max_length=64, blank=True, default="")
    event_type = models.CharField(max_length=64, blank=True, default="")
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
