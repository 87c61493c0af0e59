"""RFC 9457 problem details for every error a service returns.

`exception_handler` is DRF's EXCEPTION_HANDLER; the `handler*` views cover what Django answers
before DRF sees a request (unknown paths, oversized bodies, crashes).
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
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error

PROBLEM_CONTENT_TYPE = "application/problem+json"

logger = logging.getLogger(__name__)


class Problem(exceptions.APIException):
    """A domain error with its own status, raised by services and rendered as problem+json.

    `code` becomes the problem `type` (`urn:problem:<code>`), so clients can branch on it
    without parsing `detail`.
    """

    status_code: int = status.HTTP_400_BAD_REQUEST
    default_code = "bad-request"
    default_detail = "The request could not be processed."

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status_code: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        if status_code is not None:
            self.status_code = status_code
        super().__init__(detail=detail or self.default_detail, code=code or self.default_code)
        self.problem_code = code or self.default_code
        self.extra = dict(extra or {})


class Conflict(Problem):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with the current state of the resource."


class Unprocessable(Problem):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "unprocessable"
    default_detail = "The request is well-formed but cannot be processed."


# Seconds a client waits before retrying after a 503 for the database.
UNAVAILABLE_RETRY_AFTER = 2


def body_too_large() -> Problem:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return Problem(
        f"The request body is larger than {limit} bytes.",
        code="body-too-large",
        status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        extra={"limit": limit},
    )


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


def problem_response(
    status_code: int, *, detail: str, code: str | None = None, **kwargs: Any
) -> JsonResponse:
    return JsonResponse(
        problem_body(status_code, detail=detail, code=code, **kwargs),
        status=status_code,
        content_type=PROBLEM_CONTENT_TYPE,
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


def exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response | None:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, RequestDataTooBig):  # request.body read by a view or mixin
        exc = body_too_large()
    elif isinstance(exc, DatabaseError) and _is_statement_timeout(exc):
        exc = Problem(
            "The service is busy; retry shortly.",
            code="busy",
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    elif database_unavailable(exc):
        exc = unavailable()

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
            detail="The request has invalid fields.",
            code="validation-error",
            errors=errors,
        )
    else:
        code = getattr(exc, "problem_code", None)
        if code is None:
            codes = exc.get_codes()
            code = str(codes) if isinstance(codes, str) else None
            code = code.replace("_", "-") if code else None
        body = problem_body(
            exc.status_code,
            detail=str(exc.detail),
            code=code,
            extra=getattr(exc, "extra", None),
        )
    return Response(
        body, status=exc.status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE
    )


def database_unavailable(exc: BaseException) -> bool:
    """A transient failure of the database, not of the request: the connection was refused
    or lost (PostgreSQL down, restarting, a backend terminated), or the transaction lost a
    serialization or deadlock race. Nothing the request changed was committed, unless the
    commit itself was under way; an `Idempotency-Key` makes the retry safe either way."""
    return isinstance(exc, OperationalError | InterfaceError)


def unavailable() -> Problem:
    problem = Problem(
        "The service cannot reach its database; retry shortly.",
        code="unavailable",
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
    )
    problem.wait = UNAVAILABLE_RETRY_AFTER  # type: ignore[attr-defined]
    return problem


def _is_statement_timeout(exc: DatabaseError) -> bool:
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) in {"57014", "55P03"}  # query canceled, lock n/a


# Django-level handlers, wired in each service's root urlconf.
def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    if isinstance(exception, RequestDataTooBig):  # request.body read before any view
        problem = body_too_large()
        return problem_response(
            problem.status_code,
            detail=str(problem.detail),
            code=problem.problem_code,
            extra=problem.extra,
        )
    return problem_response(400, detail="The request could not be read.", code="bad-request")


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(403, detail="You do not have permission to do this.", code="forbidden")


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(404, detail="Not found.", code="not-found")


def handler500(request: HttpRequest) -> JsonResponse:
    return problem_response(500, detail="An unexpected error occurred.", code="server-error")
