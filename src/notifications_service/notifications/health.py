from __future__ import annotations

from django.db.models import Count, Min, Q
from django.utils import timezone

from notifications_service.notifications.models import EmailDelivery
from servicekit.health import Check


def check_email_deliveries() -> Check:
    """Informational: emails waiting, the oldest one's age, and those given up on."""
    stats = EmailDelivery.objects.aggregate(
        pending=Count("id", filter=Q(status="pending")),
        failed=Count("id", filter=Q(status="failed")),
        oldest=Min("created_at", filter=Q(status="pending")),
    )
    oldest = stats["oldest"]
    age = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    return Check(
        "email",
        True,
        data={
            "pending": stats["pending"],
            "failed": stats["failed"],
            "oldest_pending_age_seconds": round(age, 3),
        },
    )
