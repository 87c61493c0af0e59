from __future__ import annotations

from notifications_service.contacts.models import Contact


def contact_get(*, user_id: str) -> Contact | None:
    return Contact.objects.filter(user_id=user_id).first()
