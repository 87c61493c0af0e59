"""RFC 9457 problem details for every error a service returns.

Domain errors (servicekit.errors, re-exported here) are plain exceptions; `problem_response`
answers one in plain Django (the middleware, the `handler*` views, the batched booking
view), and `exception_handler`, DRF's EXCEPTION_HANDLER, answers it in DRF views with the
same body (`error_body`) and headers (`error_headers`). The DRF handler also turns DRF's
own exceptions (authentication, permissions, validation, throttling) into problems, and
`error_response` gives that same answer outside DRF's views.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error

from servicekit.errors import (
    Conflict,
    DomainError,
    InvalidFields,
    NotFound,
    Problem,
    Unprocessable,
)

__all__ = [
    "PROBLEM_CONTENT_TYPE",
    "UNAVAILABLE_RETRY_AFTER",
    "Conflict",
    "DomainError",
    "InvalidFields",
    "NotFound",
    "Problem",
    "Unprocessable",
    "body_too_large",
    "busy",
    "database_unavailable",
    "error_body",
    "error_headers",
    "error_response",
    "exception_handler",
    "handler400",
    "handler403",
    "handler404",
    "handler500",
    "problem_body",
    "problem_response",
    "unavailable",
]

PROBLEM_CONTENT_TYPE = "application/problem+json"

# Seconds a client waits before retrying after a 503 for the database.
UNAVAILABLE_RETRY_AFTER = 2

logger = logging.getLogger(__name__)


def body_too_large() -> Problem:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return Problem(
        f"The request body is larger than {limit} bytes.",
        code="body-too-large",
        status_code=413,
        extra={"limit": limit},
    )


def busy() -> Problem:
    """A statement ran past its time limit, or waited too long for a lock."""
    return Problem(
        "The service is busy; retry shortly.",
        code="busy",
        status_code=503,
    )


def unavailable() -> Problem:
    return Problem(
        "The service cannot reach its database; retry shortly.",
        code="unavailable",
        status_code=503,
        retry_after=UNAVAILABLE_RETRY_AFTER,
    )


def database_unavailable(exc: BaseException) -> bool:
    """A transient failure of the database, not of the request: the connection was refused
    or lost (PostgreSQL down, restarting, a backend terminated), or the transaction lost a
    serialization or deadlock race. Nothing the request changed was committed, unless the
    commit itself was under way; an `Idempotency-Key` makes the retry safe either way."""
    return isinstance(exc, OperationalError | InterfaceError)


def _is_statement_timeout(exc: DatabaseError) -> bool:
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) in {"57014", "55P03"}  # query canceled, lock n/a


def domain_error(exc: BaseException) -> DomainError | None:
    """`exc` as the domain error it answers as: itself, or what a failure of Django or the
    database means to the client; None for anything else."""
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, RequestDataTooBig):  # request.body read by a view or mixin
        return body_too_large()
    if isinstance(exc, DatabaseError) and _is_statement_timeout(exc):
        return busy()
    if database_unavailable(exc):
        return unavailable()
    return None


def problem_body(
    status_code: int,
    *,
    detail: str,
    code: str | None = None,
    title: str | None = None,
    errors: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    try:
        default_title = HTTPStatus(status_code).phrase
    except ValueError:
        default_title = "Error"
    body: dict[str, Any] = {
        "type": f"urn:problem:{code}" if code else "about:blank",
        "title": title or default_title,
        "status": status_code,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return body


def error_body(error: DomainError) -> dict[str, Any]:
    return problem_body(
        error.status_code,
        detail=error.detail,
        code=error.problem_code,
        errors=error.errors,
        extra=error.extra,
    )


def error_headers(error: DomainError) -> dict[str, str]:
    if error.retry_after is None:
        return {}
    return {"Retry-After": str(error.retry_after)}


def problem_response(error: DomainError) -> HttpResponse:
    """The problem+json answer to a domain error, in plain Django."""
    return JsonResponse(
        error_body(error),
        status=error.status_code,
        content_type=PROBLEM_CONTENT_TYPE,
        headers=error_headers(error),
    )


def _flatten_errors(data: Any) -> Any:
    """Validation errors as {field: [messages]}; non-field errors under "non_field_errors"."""
    if isinstance(data, Mapping):
        return {key: _flatten_errors(value) for key, value in data.items()}
    if isinstance(data, list):
        if all(isinstance(item, str) for item in data):
            return [str(item) for item in data]
        return [_flatten_errors(item) for item in data]
    return [str(data)]


def _framework_problem(exc: Exception) -> tuple[dict[str, Any], int, dict[str, str]] | None:
    """Body, status and headers for what Django and DRF raise themselves; None for a bug."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    if not isinstance(exc, exceptions.APIException):
        return None  # a real bug: Django logs it and handler500 answers

    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = str(exc.auth_header)  # type: ignore[attr-defined]
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]

    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten_errors(exc.detail)
        if isinstance(errors, list):
            errors = {"non_field_errors": errors}
        body = problem_body(
            exc.status_code,
            detail=InvalidFields.default_detail,
            code=InvalidFields.default_code,
            errors=errors,
        )
    else:
        codes = exc.get_codes()
        code = str(codes).replace("_", "-") if isinstance(codes, str) and codes else None
        body = problem_body(exc.status_code, detail=str(exc.detail), code=code)
    return body, exc.status_code, headers


def exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: domain errors as `problem_response` answers them, and DRF's
    own exceptions as problems too."""
    error = domain_error(exc)
    if error is not None:
        return Response(
            error_body(error),
            status=error.status_code,
            headers=error_headers(error),
            content_type=PROBLEM_CONTENT_TYPE,
        )
    answer = _framework_problem(exc)
    if answer is None:
        return None
    body, status_code, headers = answer
    return Response(body, status=status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def error_response(exc: Exception) -> HttpResponse:
    """The problem+json answer to `exc` outside DRF's views (the batched booking view),
    exactly as `exception_handler` gives it inside them. An exception that handler does not
    know answers 503 `busy`: the caller could not finish, and a retry may."""
    error = domain_error(exc)
    if error is not None:
        return problem_response(error)
    answer = _framework_problem(exc)
    if answer is None:
        return problem_response(busy())
    body, status_code, headers = answer
    return JsonResponse(
        body, status=status_code, content_type=PROBLEM_CONTENT_TYPE, headers=headers
    )


# Django-level handlers, wired in each service's root urlconf.
def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig):  # request.body read before any view
        return problem_response(body_too_large())
    return problem_response(Problem("The request could not be read.", code="bad-request"))


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return problem_response(
        Problem("You do not have permission to do this.", code="forbidden", status_code=403)
    )


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return problem_response(NotFound())


def handler500(request: HttpRequest) -> HttpResponse:
    return problem_response(
        Problem("An unexpected error occurred.", code="server-error", status_code=500)
    )
