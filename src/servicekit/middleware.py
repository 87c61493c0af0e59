"""Middleware every service runs first."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from servicekit.problems import problem_response


class UrlLengthLimitMiddleware:
    """A URL longer than MAX_URL_LENGTH bytes answers 414 as a problem, before routing.

    The HTTP server's own limit (gunicorn's `--limit-request-line`, 8190 in the stack) sits
    above this one, so a long URL normally gets this problem+json answer, not the server's
    HTML page.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.limit: int = settings.MAX_URL_LENGTH

    def __call__(self, request: HttpRequest) -> HttpResponse:
        length = len(request.path_info.encode()) + len(request.META.get("QUERY_STRING", ""))
        if length > self.limit:
            return problem_response(
                414,
                detail=f"The URL is longer than {self.limit} bytes.",
                code="uri-too-long",
            )
        return self.get_response(request)
