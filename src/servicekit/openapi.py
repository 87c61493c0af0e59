"""drf-spectacular extension so the schema documents bearer JWT authentication."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as _AutoSchema


class JWTAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "servicekit.auth.JWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


class AutoSchema(_AutoSchema):
    """Names components after their view when serializers are nested in it.

    Every view nests its own `InputSerializer` / `OutputSerializer`; without this, all of
    them would be one schema component called `Input`.
    """

    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        cls = serializer if isinstance(serializer, type) else type(serializer)
        outer, _, inner = cls.__qualname__.rpartition(".")
        if outer and "<locals>" not in outer:
            return f"{outer.replace('.', '')}{inner}"
        return str(super().get_serializer_name(serializer, direction))
