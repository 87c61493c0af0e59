"""URL helpers: every public path answers with and without its trailing slash."""

from __future__ import annotations

import re
from typing import Any

from django.urls import URLPattern, URLResolver, include
from django.urls.resolvers import RegexPattern
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from servicekit.fields import BIGINT_MAX
from servicekit.health import LiveApi, ReadyApi, WhoAmIApi

# `int` is an id: a bigint key, 1..2**63-1 (at most 19 digits here, the range in
# _IdRangePattern), so an id no row can have is an unknown path (404) before any view.
_CONVERTERS = {"int": r"[0-9]{1,19}", "uuid": r"[0-9a-fA-F-]{36}", "str": r"[^/]+"}


class _IdRangePattern(RegexPattern):
    def __init__(self, regex: str, *, ids: frozenset[str], name: str | None) -> None:
        super().__init__(regex, name=name, is_endpoint=True)
        self.ids = ids

    def match(self, path: str) -> tuple[str, tuple[Any, ...], dict[str, Any]] | None:
        matched = super().match(path)
        if matched is None:
            return None
        kwargs = matched[2]
        if any(not 1 <= int(kwargs[key]) <= BIGINT_MAX for key in self.ids):
            return None
        return matched


def route(pattern: str, view: Any, name: str | None = None) -> URLPattern:
    """`route("api/events/<int:pk>", view)` matches `api/events/7` and `api/events/7/`."""
    pattern = pattern.strip("/")
    regex = re.sub(
        r"<(?:(\w+):)?(\w+)>",
        lambda m: f"(?P<{m.group(2)}>{_CONVERTERS[m.group(1) or 'str']})",
        pattern,
    )
    ids = frozenset(re.findall(r"<int:(\w+)>", pattern))
    return URLPattern(_IdRangePattern(rf"^{regex}/?$", ids=ids, name=name), view, name=name)


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
