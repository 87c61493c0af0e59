from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import F, Q


class Resource(models.Model):
    """A bookable thing (room, court, equipment) with daily opening hours.

    Opening hours are wall-clock times in the resource's own `timezone`; slots start at
    `opening_time` plus a multiple of `slot_minutes` and last a multiple of it.
    """

    organizer_id = models.UUIDField(db_index=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    location = models.CharField(max_length=200, blank=True, default="")
    timezone = models.CharField(max_length=64, default="UTC")
    opening_time = models.TimeField()
    closing_time = models.TimeField()
    slot_minutes = models.PositiveIntegerField(default=60)
    price_per_slot = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "resources"
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(closing_time__gt=F("opening_time")), name="resource_hours_ordered"
            ),
            models.CheckConstraint(
                condition=Q(slot_minutes__gte=5) & Q(slot_minutes__lte=24 * 60),
                name="resource_slot_minutes_range",
            ),
            models.CheckConstraint(
                condition=Q(price_per_slot__gte=Decimal("0")), name="resource_price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.name
