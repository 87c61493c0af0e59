"""Domain errors answer the same problem+json inside DRF views and outside them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.http import HttpResponse
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer

from servicekit.errors import Conflict, DomainError, InvalidFields, NotFound, Problem
from servicekit.problems import (
    PROBLEM_CONTENT_TYPE,
    error_response,
    exception_handler,
    problem_response,
    unavailable,
)
from servicekit.ratelimits import RateLimited


def drf_answer(exc: Exception) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = exception_handler(exc, {})
    assert response is not None
    # Rendering sets the content type DRF was given; before that it is Django's default.
    headers = {**response.headers, "Content-Type": str(response.content_type)}
    return response.status_code, json.loads(JSONRenderer().render(response.data)), headers


def plain_answer(response: HttpResponse) -> tuple[int, dict[str, Any], dict[str, str]]:
    return response.status_code, json.loads(response.content), dict(response.headers)


ERRORS = [
    Conflict("Not enough tickets left.", code="sold-out", extra={"available_tickets": 2}),
    NotFound(),
    Problem("The URL is too long.", code="uri-too-long", status_code=414),
    InvalidFields({"email": ["A user with this email already exists."]}),
    RateLimited(wait=7, detail="Too many attempts; retry in 7 s."),
    unavailable(),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda error: type(error).__name__)
def test_drf_views_and_plain_django_answer_alike(error: DomainError) -> None:
    assert drf_answer(error) == plain_answer(problem_response(error))
    assert plain_answer(error_response(error)) == plain_answer(problem_response(error))


def test_the_answer_carries_status_code_detail_extra_and_retry_after() -> None:
    error = Conflict("Not enough tickets left.", code="sold-out", extra={"available_tickets": 2})
    status, body, headers = plain_answer(problem_response(error))
    assert status == 409
    assert headers["Content-Type"] == PROBLEM_CONTENT_TYPE
    assert "Retry-After" not in headers
    assert body == {
        "type": "urn:problem:sold-out",
        "title": "Conflict",
        "status": 409,
        "detail": "Not enough tickets left.",
        "available_tickets": 2,
    }
    status, body, headers = plain_answer(problem_response(RateLimited(wait=7)))
    assert (status, body["type"], headers["Retry-After"]) == (429, "urn:problem:rate-limited", "7")


def test_a_domain_error_reads_as_its_detail() -> None:
    error = Conflict("Not enough tickets left.", code="sold-out")
    assert str(error) == error.detail == "Not enough tickets left."
    assert (error.status_code, error.problem_code) == (409, "sold-out")
    assert str(NotFound()) == NotFound.default_detail
    assert NotFound().problem_code == NotFound.default_code == "not-found"


def test_invalid_fields_answer_as_an_input_serializer_would() -> None:
    messages = {"email": ["A user with this email already exists."]}
    assert drf_answer(InvalidFields(messages)) == drf_answer(ValidationError(messages))


def test_an_unknown_exception_outside_drf_is_a_busy_503() -> None:
    status, body, _ = plain_answer(error_response(RuntimeError("a bug in a batch")))
    assert (status, body["type"]) == (503, "urn:problem:busy")
