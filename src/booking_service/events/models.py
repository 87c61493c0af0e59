from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import models
from django.db.models import F, Func, Q


class EventStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    CANCELED = "canceled", "Canceled"


def on_sale_sql(*, now: str = "now()", table: str = "") -> str:
    """The on-sale rule as a SQL condition: active and not started. `now` is the SQL for the
    moment judged. `on_sale` and `Event.is_on_sale` are the same rule (a test holds the
    three equal); the booking service's inventory module is where it is used."""
    prefix = f"{table}." if table else ""
    return f"{prefix}status = '{EventStatus.ACTIVE}' AND {prefix}starts_at > {now}"


def on_sale(now: dt.datetime) -> Q:
    """The on-sale rule for the ORM."""
    return Q(status=EventStatus.ACTIVE, starts_at__gt=now)


class StartsAt(Func):
    """`date + time` read as UTC: the start as one timestamp (immutable, so it can be a
    stored generated column)."""

    template = "((%(expressions)s) AT TIME ZONE 'UTC')"
    arg_joiner = " + "
    output_field = models.DateTimeField()


class Event(models.Model):
    """A ticketed event. `date` and `time` are the start, in UTC; `starts_at` is the same
    instant as one column, kept by the database, so every "has it started" compares it.

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
    starts_at = models.GeneratedField(
        expression=StartsAt(F("date"), F("time")),
        output_field=models.DateTimeField(),
        db_persist=True,
    )
    status = models.CharField(
        max_length=16, choices=EventStatus.choices, default=EventStatus.ACTIVE
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "events"
        ordering = ["starts_at", "id"]
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
            # Not on `available_tickets`: a column no index names lets the counter's updates
            # be HOT (no new index entries per sale batch); the listing filters it on the way.
            models.Index(
                fields=["starts_at", "id"],
                name="event_listing_idx",
                condition=Q(status="active"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.date} {self.time})"

    def is_on_sale(self, now: dt.datetime) -> bool:
        """The on-sale rule for an event in hand."""
        return self.status == EventStatus.ACTIVE and self.starts_at > now
