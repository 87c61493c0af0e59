from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.utils import timezone

from users_service.tokens.keys import published_keys_cutoff
from users_service.tokens.models import SigningKey


def jwks_document() -> dict[str, Any]:
    """Public keys that may have signed a token still valid now: the active one and recently
    retired ones."""
    cutoff = timezone.now() - published_keys_cutoff()
    keys = SigningKey.objects.filter(Q(retired_at__isnull=True) | Q(retired_at__gt=cutoff))
    return {"keys": [key.public_jwk for key in keys.order_by("-created_at")]}
