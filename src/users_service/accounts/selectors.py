from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from servicekit.auth import Principal
from users_service.accounts.models import User


def user_get_visible(*, actor: Principal, user_id: str) -> User:
    """The user `actor` may see: themselves, or anyone for an admin. Others are 404."""
    if not actor.is_admin and actor.id != str(user_id):
        raise Http404
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise Http404
    return user


def user_list(*, role: str | None = None, search: str | None = None) -> QuerySet[User]:
    qs = User.objects.order_by("created_at", "id")
    if role:
        qs = qs.filter(role=role)
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(email__icontains=search))
    return qs
