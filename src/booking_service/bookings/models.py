from __future__ import annotations

import uuid

from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import RangeBoundary, RangeOperators
from django.db import models
from django.db.models import Func, Q

from booking_service.events.models import Event
from booking_service.resources.models import Resource


class TsTzRange(Func):
    function = "TSTZRANGE"
    output_field = models.DateTimeField()


class BookingKind(models.TextChoices):
    TICKETS = "tickets", "Tickets"
    SLOT = "slot", "Slot"


class BookingStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    CONFIRMED = "confirmed", "Confirmed"
    CANCELED = "canceled", "Canceled"


class CancelReason(models.TextChoices):
    NONE = "", "None"
    USER = "user", "Canceled by the customer"
    EVENT_CANCELED = "event_canceled", "The event was canceled"
    ADMIN = "admin", "Canceled by an admin"
    EXPIRED = "expired", "The hold expired"


ACTIVE_STATUSES = (BookingStatus.PENDING, BookingStatus.CONFIRMED)


class Booking(models.Model):
    """Tickets of an event, or a time slot of a resource.

    `pending` holds the inventory until `expires_at`; payment confirms it; cancelation or
    expiry (`canceled` with `cancel_reason="expired"`) returns it.
    """

    user_id = models.UUIDField()
    kind = models.CharField(max_length=8, choices=BookingKind.choices)
    event = models.ForeignKey(
        Event, on_delete=models.PROTECT, null=True, blank=True, related_name="bookings"
    )
    tickets_booked = models.PositiveIntegerField(null=True, blank=True)
    resource = models.ForeignKey(
        Resource, on_delete=models.PROTECT, null=True, blank=True, related_name="bookings"
    )
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=BookingStatus.choices, default=BookingStatus.PENDING
    )
    cancel_reason = models.CharField(
        max_length=16, choices=CancelReason.choices, blank=True, default=""
    )
    expires_at = models.DateTimeField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "bookings"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(
                        kind=BookingKind.TICKETS,
                        event__isnull=False,
                        tickets_booked__gte=1,
                        resource__isnull=True,
                        start_time__isnull=True,
                        end_time__isnull=True,
                    )
                    | Q(
                        kind=BookingKind.SLOT,
                        event__isnull=True,
                        tickets_booked__isnull=True,
                        resource__isnull=False,
                        start_time__isnull=False,
                        end_time__isnull=False,
                        end_time__gt=models.F("start_time"),
                    )
                ),
                name="booking_kind_fields",
            ),
            # Two active bookings of one resource never overlap: the database refuses it.
            ExclusionConstraint(
                name="booking_slot_no_overlap",
                expressions=[
                    ("resource", RangeOperators.EQUAL),
                    (
                        TsTzRange("start_time", "end_time", RangeBoundary()),
                        RangeOperators.OVERLAPS,
                    ),
                ],
                condition=Q(status__in=ACTIVE_STATUSES, resource__isnull=False),
            ),
        ]
        indexes = [
            models.Index(fields=["user_id", "-created_at"], name="booking_user_idx"),
            models.Index(
                fields=["event", "expires_at"],
                name="booking_event_pending_idx",
                condition=Q(status=BookingStatus.PENDING),
            ),
            # A customer's pending holds of an event, summed against the hold limit.
            models.Index(
                fields=["event", "user_id"],
                name="booking_event_user_pending_idx",
                condition=Q(status=BookingStatus.PENDING),
            ),
            models.Index(
                fields=["expires_at"],
                name="booking_pending_expiry_idx",
                condition=Q(status=BookingStatus.PENDING),
            ),
        ]

    def __str__(self) -> str:
        return f"booking {self.pk} ({self.kind}, {self.status})"

    @property
    def organizer_id(self) -> uuid.UUID:
        """Who sells what is booked: the event's or the resource's organizer."""
        owner = self.event if self.event is not None else self.resource
        if owner is None:
            raise ValueError(f"booking {self.pk} has neither event nor resource")
        return uuid.UUID(str(owner.organizer_id))
