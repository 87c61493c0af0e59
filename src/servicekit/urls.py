"""URL helpers: every public path answers with and without its trailing slash."""

from __future__ import annotations

import re
from typing import Any

from django.urls import URLPattern, URLResolver, include, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from servicekit.health import LiveApi, ReadyApi, WhoAmIApi

_CONVERTERS = {"int": r"[0-9]+", "uuid": r"[0-9a-fA-F-]{36}", "str": r"[^/]+"}


def route(pattern: str, view: Any, name: str | None = None) -> URLPattern:
    """`route("api/events/<int:pk>", view)` matches `api/events/7` and `api/events/7/`."""
    regex = re.sub(
        r"<(?:(\w+):)?(\w+)>",
        lambda m: f"(?P<{m.group(2)}>{_CONVERTERS[m.group(1) or 'str']})",
        pattern.strip("/"),
    )
    if name is None:
        return re_path(rf"^{regex}/?$", view)
    return re_path(rf"^{regex}/?$", view, name=name)


def common_urlpatterns() -> list[URLPattern | URLResolver]:
    """Health, OpenAPI schema and interactive docs, the same on every service."""
    return [
        route("health/live", LiveApi.as_view(), name="health-live"),
        route("health/ready", ReadyApi.as_view(), name="health-ready"),
        route("api/whoami", WhoAmIApi.as_view(), name="whoami"),
        route("api/schema", SpectacularAPIView.as_view(), name="schema"),
        route("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    ]


__all__ = ["common_urlpatterns", "include", "route"]
