"""Middleware every service runs first."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from servicekit.errors import Problem
from servicekit.problems import database_unavailable, problem_response, unavailable

logger = logging.getLogger(__name__)


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
                Problem(
                    f"The URL is longer than {self.limit} bytes.",
                    code="uri-too-long",
                    status_code=414,
                )
            )
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    """A database failure that escapes a view (a commit that failed as the database went
    away, say) answers 503 with Retry-After, as the views' own handler does, not 500: the
    client may retry. Errors of other kinds stay 500s."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not database_unavailable(exception):
            return None
        logger.warning("database unavailable: %s %s", request.method, request.path, exc_info=True)
        return problem_response(unavailable())
