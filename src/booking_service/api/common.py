"""Helpers the booking APIs share."""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request

from servicekit import fields
from servicekit.actors import Actor
from servicekit.problems import NotFound

MAX_ID = 2**63 - 1


def actor_of(request: Request) -> Actor:
    """The caller as an `Actor`; user ids are UUIDs (the token's `sub`)."""
    user: Any = request.user
    try:
        user_id = uuid.UUID(str(user.id))
    except (AttributeError, ValueError) as exc:
        raise PermissionDenied("This endpoint needs a user token.") from exc
    return Actor(id=user_id, is_admin=bool(getattr(user, "is_admin", False)))


def id_field(**kwargs: Any) -> serializers.IntegerField:
    return fields.id_field(**kwargs)


def not_found(what: str) -> NotFound:
    return NotFound(f"No such {what}.", code=f"{what}-not-found")


def path_id(value: Any) -> int:
    """A path id too large for a bigint cannot exist."""
    number = int(value)
    if number > MAX_ID:
        raise NotFound("Not found.")
    return number
