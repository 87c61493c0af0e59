from __future__ import annotations

from django.db.models import Count, Min
from django.utils import timezone

from servicekit.health import Check
from servicekit.outbox.models import OutboxMessage


def check_outbox_lag() -> Check:
    """Relay lag: how many messages wait for publication and how old the oldest one is.

    Informational: a broker outage makes the outbox grow (that is its job), so lag alone does
    not make the service unready; the bus check does.
    """
    pending = OutboxMessage.objects.filter(sent_at__isnull=True, failed_at__isnull=True).aggregate(
        count=Count("id"), oldest=Min("occurred_at")
    )
    oldest = pending["oldest"]
    lag = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    failed = OutboxMessage.objects.filter(sent_at__isnull=True, failed_at__isnull=False).count()
    return Check(
        "outbox",
        True,
        data={
            "unsent": pending["count"],
            "oldest_unsent_age_seconds": round(lag, 3),
            "failed": failed,
        },
    )
