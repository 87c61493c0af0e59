from __future__ import annotations

from django.db.models import QuerySet

from notifications_service.inbox.models import DeadLetter


def dead_letter_list(*, consumer: str | None = None) -> QuerySet[DeadLetter]:
    queryset = DeadLetter.objects.all()
    if consumer:
        queryset = queryset.filter(consumer=consumer)
    return queryset.order_by("-id")
