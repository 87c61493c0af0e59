"""Who asks: what a service's domain code knows of the caller, without any HTTP in it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """The token's subject and whether it is an admin."""

    id: uuid.UUID
    is_admin: bool = False
