from __future__ import annotations

import uuid

from django.db.models import QuerySet

from booking_service.resources.models import Resource


def resource_list(*, organizer_id: uuid.UUID | None = None) -> QuerySet[Resource]:
    resources = Resource.objects.filter(is_active=True)
    if organizer_id is not None:
        resources = resources.filter(organizer_id=organizer_id)
    return resources.order_by("id")


def resource_get(*, resource_id: int) -> Resource | None:
    return Resource.objects.filter(pk=resource_id, is_active=True).first()
