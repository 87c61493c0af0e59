"""Role permissions for `Principal` callers."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class _HasRole(BasePermission):
    roles: frozenset[str] = frozenset()

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return bool(
            user is not None
            and getattr(user, "is_authenticated", False)
            and getattr(user, "role", None) in self.roles
        )


class IsAdmin(_HasRole):
    roles = frozenset({"admin"})


class IsOrganizerOrAdmin(_HasRole):
    message = "Only organizers and admins can do this."
    roles = frozenset({"organizer", "admin"})


class IsAdminOrService(_HasRole):
    roles = frozenset({"admin", "service"})


class IsHuman(_HasRole):
    """A person's token (any role but `service`)."""

    roles = frozenset({"customer", "organizer", "admin"})
