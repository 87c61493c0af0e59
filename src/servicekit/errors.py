"""Domain errors: what services, selectors and actions raise when they refuse a request.

Plain Python exceptions, so the domain depends on no web framework. Each carries what its
problem+json answer needs (status, code, detail, extra fields); `servicekit.problems`
renders them, in DRF views and outside them alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class DomainError(Exception):
    """A refusal with its own status.

    `problem_code` becomes the problem `type` (`urn:problem:<code>`), so clients can branch
    on it without parsing `detail`. `extra` fields are added to the body; `retry_after`
    (seconds) becomes a `Retry-After` header; `errors` ({field: [messages]}) says which
    fields of the request were refused.
    """

    status_code: int = 400
    default_code: str = "bad-request"
    default_detail: str = "The request could not be processed."
    retry_after: int | None = None
    errors: Mapping[str, list[str]] | None = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        status_code: int | None = None,
        extra: Mapping[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        self.detail: str = detail or self.default_detail
        super().__init__(self.detail)
        if status_code is not None:
            self.status_code = status_code
        if retry_after is not None:
            self.retry_after = retry_after
        self.problem_code: str = code or self.default_code
        self.extra: dict[str, Any] = dict(extra or {})

    def __str__(self) -> str:
        return self.detail


class Problem(DomainError):  # noqa: N818 (RFC 9457's word, the name services raise)
    """The general refusal: its status and code are given where it is raised, or by a
    subclass. (Rate limiting, which has its own shape, is a DomainError but not a Problem.)"""


class NotFound(Problem):
    status_code = 404
    default_code = "not-found"
    default_detail = "Not found."


class Conflict(Problem):
    status_code = 409
    default_code = "conflict"
    default_detail = "The request conflicts with the current state of the resource."


class Unprocessable(Problem):
    status_code = 422
    default_code = "unprocessable"
    default_detail = "The request is well-formed but cannot be processed."


class InvalidFields(Problem):
    """Fields of the request refused by the domain (a taken email, a weak password), answered
    as a validation error like the ones input serializers give."""

    default_code = "validation-error"
    default_detail = "The request has invalid fields."

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        super().__init__()
        self.errors = {field: list(messages) for field, messages in errors.items()}
