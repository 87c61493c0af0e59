from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import models
from django.db.models import F, Q


class EventStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    CANCELED = "canceled", "Canceled"


class Event(models.Model):
    """A ticketed event. `date` and `time` are the start, in UTC.

    `available_tickets` is the inventory counter: tickets neither held by a pending booking
    nor sold to a confirmed one. The database keeps it within `0..total_tickets`.
    """

    organizer_id = models.UUIDField(db_index=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    date = models.DateField()
    time = models.TimeField()
    location = models.CharField(max_length=200)
    total_tickets = models.PositiveIntegerField()
    available_tickets = models.PositiveIntegerField()
    price_per_ticket = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    status = models.CharField(
        max_length=16, choices=EventStatus.choices, default=EventStatus.ACTIVE
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "events"
        ordering = ["date", "time", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(available_tickets__gte=0), name="event_available_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(available_tickets__lte=F("total_tickets")),
                name="event_available_within_total",
            ),
            models.CheckConstraint(
                condition=Q(price_per_ticket__gte=Decimal("0")), name="event_price_not_negative"
            ),
        ]
        indexes = [
            models.Index(
                fields=["date", "time", "id"],
                name="event_listing_idx",
                condition=Q(status="active") & Q(available_tickets__gt=0),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.date} {self.time})"

    @property
    def starts_at(self) -> dt.datetime:
        return dt.datetime.combine(self.date, self.time, tzinfo=dt.UTC)
