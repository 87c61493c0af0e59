"""What every page's template gets: the signed-in person, as the users service named them."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from web_service.api import USER


def site(request: HttpRequest) -> dict[str, Any]:
    user = request.session.get(USER) if hasattr(request, "session") else None
    return {"current_user": user}
