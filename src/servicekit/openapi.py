"""drf-spectacular extensions, so each service's schema says what the service really answers.

- Bearer JWT authentication is a security scheme.
- Every list answers the `{count, next, previous, results}` envelope (servicekit.pagination).
- Every error status an operation can answer is documented with an
  `application/problem+json` body (servicekit.problems): the ones every operation of its
  kind can answer (400 for bad input, 401 without a valid token, 403 for a role that may
  not, 404 for a path id or page that does not exist, 413/415 for bodies, 503 when busy),
  plus those a view names with `@problems(...)`.
- Views may name OpenAPI links from a response to the operations a client calls next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as _AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from servicekit.pagination import PageNumberPagination
from servicekit.problems import PROBLEM_CONTENT_TYPE

# What REST_FRAMEWORK["TIME_INPUT_FORMATS"] (strptime) accepts, and what output looks like.
TIME_OF_DAY_PATTERN = r"^(2[0-3]|[01]?[0-9]):[0-5]?[0-9](:[0-5]?[0-9](\.[0-9]{1,6})?)?$"

Handler = TypeVar("Handler", bound=Callable[..., Any])


class JWTAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "servicekit.auth.JWTAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {
            "type": "string",
            "description": "`urn:problem:<code>`: branch on this, not on `detail`.",
        },
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "description": "Per field (validation errors only): the field's messages; "
            "`non_field_errors` for the request as a whole.",
            "additionalProperties": {},
        },
    },
    "required": ["type", "title", "status", "detail"],
    "additionalProperties": True,
}

# Why a status can happen, and the problem types it comes with.
PROBLEM_DESCRIPTIONS = {
    400: "Malformed or invalid input. Types: `validation-error` (with `errors` per field), "
    "`malformed-json`, `json-too-deep`, `json-string-too-long`, `json-number-out-of-range`, "
    "`json-nul-character`, or a domain rule named in `type`.",
    401: "No valid bearer token, or wrong credentials. Types: `not-authenticated`, "
    "`authentication-failed`, `invalid-credentials`, `invalid-refresh-token`.",
    402: "The payment provider declined the charge. Type: `payment-failed`.",
    403: "The caller's role may not do this. Types: `permission-denied`, `forbidden`, "
    "or a domain rule named in `type`.",
    404: "No such object (or not the caller's), or a page past the last. Type: `not-found` "
    "or `<entity>-not-found`.",
    409: "Conflicts with the current state (sold out, already paid, slot taken, or an "
    "`Idempotency-Key` in use). Type names the conflict.",
    413: "The body is larger than the service accepts. Type: `body-too-large`.",
    415: "The body is not `application/json`. Type: `unsupported-media-type`.",
    422: "Well-formed but cannot be processed now (e.g. the hold expired). Type names why.",
    414: "The URL is too long (`uri-too-long`). Past the HTTP server's own limit (8190 "
    "bytes in the request line) the server answers this before the service, as HTML.",
    429: "Too many attempts; retry after `Retry-After` seconds.",
    503: "The service is busy or a dependency is down; retry shortly. Type: `busy`.",
}


def problems(*statuses: int) -> Callable[[Handler], Handler]:
    """Name the error statuses a view method answers beyond those of every operation."""

    def decorate(handler: Handler) -> Handler:
        handler.problem_statuses = (*getattr(handler, "problem_statuses", ()), *statuses)  # type: ignore[attr-defined]
        return handler

    return decorate


def link(
    operation_id: str,
    *,
    parameters: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One OpenAPI link: the operation a client calls next, with values from this answer
    (`"$response.body#/id"`) as its parameters or its request body."""
    target: dict[str, Any] = {"operationId": operation_id}
    if parameters:
        target["parameters"] = parameters
    if body:
        target["requestBody"] = body
    return target


def links(**targets: dict[str, Any]) -> Callable[[Handler], Handler]:
    """OpenAPI links from this method's success response: `name=link(...)`."""

    def decorate(handler: Handler) -> Handler:
        handler.openapi_links = {**getattr(handler, "openapi_links", {}), **targets}  # type: ignore[attr-defined]
        return handler

    return decorate


class AutoSchema(_AutoSchema):
    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        # Every view nests its own `InputSerializer` / `OutputSerializer`; without this, all
        # of them would be one schema component called `Input`.
        cls = serializer if isinstance(serializer, type) else type(serializer)
        outer, _, inner = cls.__qualname__.rpartition(".")
        if outer and "<locals>" not in outer:
            return f"{outer.replace('.', '')}{inner}"
        return str(super().get_serializer_name(serializer, direction))

    def _map_serializer_field(
        self, field: Any, direction: Any, bypass_extensions: bool = False
    ) -> dict[str, Any]:
        if isinstance(field, serializers.TimeField):
            # A wall-clock time of day without an offset (`19:30`, `19:30:00`): JSON Schema's
            # `format: time` demands an offset, which these fields neither take nor give.
            return {"type": "string", "pattern": TIME_OF_DAY_PATTERN, "example": "19:30:00"}
        # drf-spectacular leaves this hook unannotated.
        schema = dict(super()._map_serializer_field(field, direction, bypass_extensions))  # type: ignore[no-untyped-call]
        pattern = getattr(field, "schema_pattern", None)
        if pattern and schema.get("type") == "string" and "pattern" not in schema:
            schema["pattern"] = pattern  # text that refuses control characters says so
        return schema

    def _get_paginator(self) -> Any:
        # Every list view paginates with servicekit's paginator (APIViews have no
        # `pagination_class` for drf-spectacular to find). The hook is unannotated.
        return super()._get_paginator() or PageNumberPagination()  # type: ignore[no-untyped-call]

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        if self.method == "POST" and hasattr(self.view, "idempotency_scope"):
            from servicekit.idempotency.services import MAX_KEY_LENGTH
            from servicekit.idempotency.views import HEADER

            parameters.append(
                OpenApiParameter(
                    HEADER,
                    {"type": "string", "pattern": f"^[ -~]{{1,{MAX_KEY_LENGTH}}}$"},
                    OpenApiParameter.HEADER,
                    description="Any unique string (a UUID, say). A retry with the same key "
                    "and body answers what the first request answered; the same key with "
                    "another body is a 422, and while the first is running a 409.",
                )
            )
        return parameters

    def _handler(self) -> Any:
        return getattr(self.view, self.method.lower(), None)

    def _problem_statuses(self) -> set[int]:
        statuses = {503}
        # drf-spectacular's `_get_request_body` is unannotated.
        has_body = self.method in {"POST", "PUT", "PATCH"} and bool(self._get_request_body())  # type: ignore[no-untyped-call]
        parameters = self._get_parameters()
        if has_body:
            statuses |= {400, 413, 415}
        if any(p.get("in") == "query" for p in parameters):
            statuses |= {400, 414}
        if "{" in self.path or (self.method == "GET" and self._is_list_view()):
            statuses.add(404)
        if any("bearerAuth" in requirement for requirement in self.get_auth() or []):
            statuses.add(401)
        permissions = self.view.get_permissions()
        if any(not isinstance(permission, AllowAny) for permission in permissions):
            statuses.add(403)
        if getattr(self.view, "throttle_classes", None):
            statuses.add(429)
        if self.method == "POST" and hasattr(self.view, "idempotency_scope"):
            statuses |= {409, 422}
        statuses.update(getattr(self._handler(), "problem_statuses", ()))
        return statuses

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        self.registry.register_on_missing(
            ResolvedComponent(
                name="Problem",
                type=ResolvedComponent.SCHEMA,
                schema=PROBLEM_SCHEMA,
                object="Problem",
            )
        )
        problem_ref = {"$ref": "#/components/schemas/Problem"}
        for status in sorted(self._problem_statuses()):
            content: dict[str, Any] = {PROBLEM_CONTENT_TYPE: {"schema": problem_ref}}
            if status == 414:
                content["text/html"] = {"schema": {"type": "string"}}
            responses.setdefault(
                str(status),
                {"description": PROBLEM_DESCRIPTIONS.get(status, "Error."), "content": content},
            )
        targets = getattr(self._handler(), "openapi_links", None)
        if targets:
            success = min(code for code in responses if code.startswith("2"))
            responses[success]["links"] = targets
        return responses
