from __future__ import annotations

from django.db.models import QuerySet

from notifications_service.webhooks.models import WebhookDelivery, WebhookEndpoint
from servicekit.auth import Principal


def webhook_endpoint_list(*, principal: Principal) -> QuerySet[WebhookEndpoint]:
    """An organizer's own endpoints; an admin sees all."""
    queryset = WebhookEndpoint.objects.all()
    if not principal.is_admin:
        queryset = queryset.filter(organizer_id=principal.id)
    return queryset.order_by("-created_at", "-id")


def webhook_endpoint_get(*, principal: Principal, endpoint_id: int) -> WebhookEndpoint | None:
    return webhook_endpoint_list(principal=principal).filter(pk=endpoint_id).first()


def webhook_delivery_list(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookDelivery]:
    return endpoint.deliveries.prefetch_related("log").order_by("-id")
