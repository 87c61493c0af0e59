"""Flows that span the users service's apps. Tokens (sessions) build on accounts, and
accounts know nothing of tokens, so a change of an account that must end its sessions is
written here, above both."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction

from users_service.accounts.models import User
from users_service.accounts.services import CREDENTIAL_FIELDS, user_change, user_change_save
from users_service.tokens.services import refresh_families_revoke


def user_update(
    *,
    user: User,
    actor_is_admin: bool,
    acting_on_self: bool,
    data: dict[str, Any],
    session: uuid.UUID | None = None,
) -> User:
    """A profile change by the user or an admin (`user_change` says who may change what).

    A password or email change ends the user's other sessions: every refresh family but
    `session` (the caller's own, kept only when `acting_on_self`), so whoever held the old
    credentials is logged out. The change, its message and the revocation commit together.
    """
    changed = user_change(
        user=user, actor_is_admin=actor_is_admin, acting_on_self=acting_on_self, data=data
    )
    if not changed:
        return user
    with transaction.atomic():
        user_change_save(user=user, changed=changed)
        if CREDENTIAL_FIELDS.intersection(changed):
            refresh_families_revoke(user_id=user.pk, keep=session if acting_on_self else None)
    return user
