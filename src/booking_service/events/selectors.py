from __future__ import annotations

import datetime as dt
import uuid

from django.db.models import Q, QuerySet
from django.utils import timezone

from booking_service.events.models import Event, on_sale


def event_list(
    *,
    text: str | None = None,
    location: str | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> QuerySet[Event]:
    """Upcoming active events with tickets left, by date then time."""
    events = Event.objects.filter(on_sale(timezone.now()), available_tickets__gt=0)
    if text:
        events = events.filter(
            Q(name__icontains=text) | Q(description__icontains=text) | Q(location__icontains=text)
        )
    if location:
        events = events.filter(location__icontains=location)
    if date_from is not None:
        events = events.filter(date__gte=date_from)
    if date_to is not None:
        events = events.filter(date__lte=date_to)
    return events.order_by("starts_at", "id")


def event_list_of_organizer(*, organizer_id: uuid.UUID) -> QuerySet[Event]:
    """An organizer's own events of every status, past ones too, the latest first: what
    they manage, where a sold-out or canceled event is still theirs to look at."""
    return Event.objects.filter(organizer_id=organizer_id).order_by("-starts_at", "-id")


def event_get(*, event_id: int) -> Event | None:
    return Event.objects.filter(pk=event_id).first()
