from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCESS = "success", "Success"
    FAILED = "failed", "Failed"
    REFUNDED = "refunded", "Refunded"


class Payment(models.Model):
    """One attempt to pay a booking through the payment provider.

    A row is `pending` while the provider is being asked; at most one payment per booking is
    pending or successful at a time (the database refuses a second), so a booking is never
    charged twice.
    """

    booking = models.ForeignKey(
        "bookings.Booking", on_delete=models.PROTECT, related_name="payments"
    )
    user_id = models.UUIDField(db_index=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    provider = models.CharField(max_length=32)
    provider_reference = models.CharField(max_length=128, blank=True, default="")
    provider_idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True)
    # The provider's single-use token (never card data), kept so a payment interrupted by a
    # crash can be asked about again with the same idempotency key.
    payment_token = models.CharField(max_length=255, blank=True, default="")
    failure_reason = models.CharField(max_length=64, blank=True, default="")
    retryable = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "payments"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["booking"],
                condition=Q(status__in=["pending", "success"]),
                name="payment_one_live_per_booking",
            ),
        ]

    def __str__(self) -> str:
        return f"payment {self.pk} ({self.status})"


class SandboxLedgerEntry(models.Model):
    """What the sandbox gateway did for one idempotency key: its memory, shared by every
    process of the service (the API and the sweeper ask the same gateway), as a real
    gateway's is. Only the sandbox provider writes it."""

    operation_key = models.CharField(max_length=160, unique=True)  # "charge:<key>", "refund:<key>"
    token = models.CharField(max_length=255, blank=True, default="")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    succeeded = models.BooleanField()
    reference = models.CharField(max_length=128, blank=True, default="")
    failure_reason = models.CharField(max_length=64, blank=True, default="")
    retryable = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "payments_sandbox_ledger"

    def __str__(self) -> str:
        return f"sandbox {self.operation_key} ({'ok' if self.succeeded else 'declined'})"
