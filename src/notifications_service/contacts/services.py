from __future__ import annotations

from datetime import datetime

from django.db import transaction

from notifications_service.contacts.models import Contact


def contact_upsert(
    *, user_id: str, name: str, email: str, role: str, occurred_at: datetime
) -> Contact | None:
    """Insert or update the contact unless what we hold is newer; the row, or None if stale."""
    with transaction.atomic():
        contact = Contact.objects.select_for_update().filter(user_id=user_id).first()
        if contact is None:
            return Contact.objects.create(
                user_id=user_id, name=name, email=email, role=role, source_occurred_at=occurred_at
            )
        if contact.source_occurred_at > occurred_at:
            return None
        contact.name = name
        contact.email = email
        contact.role = role
        contact.source_occurred_at = occurred_at
        contact.save(update_fields=["name", "email", "role", "source_occurred_at", "updated_at"])
        return contact
