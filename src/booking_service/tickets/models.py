from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from booking_service.bookings.models import Booking
from booking_service.events.models import Event


class TicketSigningKey(models.Model):
    """An Ed25519 key pair that signs ticket codes.

    The private key is stored PEM-encrypted with a key derived from SECRET_KEY
    (servicekit.signing). Exactly one key is active (`retired_at` is null). A retired key
    stays published in the JWKS while a ticket it signed is still valid: a printed code must
    verify at the door as long as its ticket does.
    """

    kid = models.CharField(max_length=64, primary_key=True)
    algorithm = models.CharField(max_length=16, default="EdDSA")
    private_key_pem = models.BinaryField()
    public_jwk = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "ticket_signing_keys"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["algorithm"],
                condition=Q(retired_at__isnull=True),
                name="ticket_signing_key_one_active",
            )
        ]

    def __str__(self) -> str:
        return self.kid


class TicketStatus(models.TextChoices):
    VALID = "valid", "Valid"
    CHECKED_IN = "checked_in", "Checked in"
    VOID = "void", "Void"


class Ticket(models.Model):
    """One admission of a confirmed ticket booking: ticket `number` 1..k of k booked.

    `code` is the compact JWS the booking service signed for it when the booking was
    confirmed (by the key `kid`); it is kept, so the code a customer saved or printed is the
    one the door checks. A canceled booking's tickets are `void`.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    booking = models.ForeignKey(Booking, on_delete=models.PROTECT, related_name="tickets")
    event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="tickets")
    number = models.PositiveSmallIntegerField()
    kid = models.CharField(max_length=64)
    code = models.TextField()
    status = models.CharField(
        max_length=16, choices=TicketStatus.choices, default=TicketStatus.VALID
    )
    created_at = models.DateTimeField(auto_now_add=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "tickets"
        ordering = ["booking_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["booking", "number"], name="ticket_booking_number"),
            models.CheckConstraint(condition=Q(number__gte=1), name="ticket_number_positive"),
        ]
        indexes = [
            models.Index(fields=["event", "status"], name="ticket_event_status_idx"),
            # Whether a retired key still has tickets to verify (tickets.keys.published_keys).
            models.Index(fields=["kid"], name="ticket_kid_idx"),
        ]

    def __str__(self) -> str:
        return f"ticket {self.id} ({self.status})"


class EventStaff(models.Model):
    """A user the event's organizer named as door staff: may check in that event's tickets,
    and nothing else of it."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="staff")
    user_id = models.UUIDField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "event_staff"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "user_id"], name="event_staff_once"),
        ]
        indexes = [models.Index(fields=["user_id"], name="event_staff_user_idx")]

    def __str__(self) -> str:
        return f"staff {self.user_id} of event {self.event_id}"


class CheckIn(models.Model):
    """The first accepted scan of a ticket; at most one per ticket, which the database
    holds. `nonce` is the scanner's own id for that scan: the same scan uploaded again is
    recognised by it and answered as the first time."""

    ticket = models.OneToOneField(Ticket, on_delete=models.PROTECT, related_name="checkin")
    nonce = models.CharField(max_length=64)
    scanned_by = models.UUIDField()
    checked_in_at = models.DateTimeField()

    class Meta:
        db_table = "checkins"

    def __str__(self) -> str:
        return f"check-in of ticket {self.ticket_id} at {self.checked_in_at}"
