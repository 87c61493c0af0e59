from __future__ import annotations

from django.db.models import QuerySet

from notifications_service.notifications.models import Notification


def notification_list(*, user_id: str, unread: bool | None = None) -> QuerySet[Notification]:
    """The user's notifications, newest first."""
    queryset = Notification.objects.filter(user_id=user_id)
    if unread is True:
        queryset = queryset.filter(read_at__isnull=True)
    elif unread is False:
        queryset = queryset.filter(read_at__isnull=False)
    return queryset.order_by("-created_at", "-id")


def notification_get(*, user_id: str, notification_id: int) -> Notification | None:
    """The notification if it belongs to the user; None otherwise (callers answer 404)."""
    return Notification.objects.filter(user_id=user_id, pk=notification_id).first()
