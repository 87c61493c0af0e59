from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from booking_service.events.models import Event, EventStatus
from booking_service.events.services import event_create
from booking_service.resources.models import Resource
from booking_service.resources.services import resource_create

DEMO_EVENTS = [
    ("Turnstile Launch Concert", "Open-air concert", "City Park Stage", 14, "19:30", 200, "35.00"),
    ("Django Meetup", "Talks on Django and DRF", "Tech Hub, Room 2", 7, "18:00", 60, "0.00"),
    ("Flash Sale Gala", "Limited seats, big demand", "Grand Theatre", 21, "20:00", 30, "120.00"),
]
DEMO_RESOURCE = "Tennis Court A"


class Command(BaseCommand):
    help = (
        "Create demo events and a demo resource owned by the demo organizer (idempotent). "
        "Prints one JSON line last: {organizer_id, events: [...], resources: [...]}."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--context", default="{}", help="what earlier services seeded")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            context = json.loads(options["context"] or "{}")
        except json.JSONDecodeError as exc:
            raise CommandError(f"--context is not JSON: {exc}") from exc
        accounts = context.get("users", {}).get("accounts", [])
        organizer = next((a for a in accounts if a.get("role") == "organizer"), None)
        if organizer is None:
            self.stdout.write(json.dumps({"skipped": "no organizer in the context"}))
            return
        organizer_id = uuid.UUID(str(organizer["id"]))
        today = timezone.now().astimezone(dt.UTC).date()
        events = []
        for name, description, location, days, time, total, price in DEMO_EVENTS:
            event = Event.objects.filter(
                organizer_id=organizer_id, name=name, status=EventStatus.ACTIVE
            ).first()
            if event is None or event.starts_at <= timezone.now():
                event = event_create(
                    organizer_id=organizer_id,
                    name=name,
                    description=description,
                    date=today + dt.timedelta(days=days),
                    time=dt.time.fromisoformat(time),
                    location=location,
                    total_tickets=total,
                    price_per_ticket=Decimal(price),
                    currency=settings.BOOKING_CURRENCY,
                )
            events.append({"id": event.pk, "name": event.name, "date": event.date.isoformat()})
        resource = Resource.objects.filter(
            organizer_id=organizer_id, name=DEMO_RESOURCE, is_active=True
        ).first()
        if resource is None:
            resource = resource_create(
                organizer_id=organizer_id,
                currency=settings.BOOKING_CURRENCY,
                name=DEMO_RESOURCE,
                description="Outdoor hard court",
                location="Riverside Sports Club",
                timezone="Europe/Berlin",
                opening_time=dt.time(8, 0),
                closing_time=dt.time(22, 0),
                slot_minutes=60,
                price_per_slot=Decimal("20.00"),
            )
        result = {
            "organizer_id": str(organizer_id),
            "events": events,
            "resources": [{"id": resource.pk, "name": resource.name}],
        }
        self.stdout.write(json.dumps(result))
