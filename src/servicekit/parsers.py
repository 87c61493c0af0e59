"""The one JSON parser of every service (DRF's DEFAULT_PARSER_CLASSES), with limits.

A body is refused before any field is looked at when it is over DATA_UPLOAD_MAX_MEMORY_SIZE
(413 `body-too-large`), is not UTF-8 JSON (400 `malformed-json`; NaN and Infinity are not
JSON), nests arrays and objects deeper than JSON_MAX_DEPTH (400 `json-too-deep`), has a
string or key longer than JSON_MAX_STRING_LENGTH characters (400 `json-string-too-long`), a
U+0000 in a string or key (400 `json-nul-character`: PostgreSQL text cannot hold it), or a
number no column can hold: an integer outside signed 64 bits, or any number whose magnitude
reaches 2**63 (400 `json-number-out-of-range`; orjson reads integers past 64 bits as floats,
so the two cannot be told apart, and no field takes either).

`loads()` is the same check for code that reads a body itself (the batched booking path).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from rest_framework.parsers import BaseParser

from servicekit.errors import Problem
from servicekit.problems import body_too_large

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class MalformedJson(Problem):
    default_code = "malformed-json"
    default_detail = "The body is not valid UTF-8 JSON."


def max_body_size() -> int:
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


def _declared_length(meta: Mapping[str, Any]) -> int:
    try:
        return int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def read_body(request: HttpRequest) -> bytes:
    """The body of a request, refused past the size limit whatever Content-Length says."""
    if _declared_length(request.META) > max_body_size():
        raise body_too_large()
    try:
        body = request.body
    except RequestDataTooBig as exc:
        raise body_too_large() from exc
    if len(body) > max_body_size():
        raise body_too_large()
    return body


def loads(body: bytes) -> Any:
    """Parse a JSON body within the limits above, or raise the problem that explains why not."""
    if len(body) > max_body_size():
        raise body_too_large()
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "infinity" in str(exc):  # a finite-looking literal such as 1e400
            raise _out_of_range() from exc
        raise MalformedJson(f"The body is not valid UTF-8 JSON: {exc}.") from exc
    check_limits(data)
    return data


def _out_of_range() -> Problem:
    return Problem(
        "A number in the body is out of range (integers are signed 64-bit at most).",
        code="json-number-out-of-range",
    )


def _check_text(text: str, max_length: int) -> None:
    if len(text) > max_length:
        raise Problem(
            f"A string in the body is longer than {max_length} characters.",
            code="json-string-too-long",
        )
    if "\x00" in text:
        raise Problem("A string in the body contains U+0000.", code="json-nul-character")


def check_limits(data: Any) -> None:
    """Depth, string and number limits of a parsed document; iterative, so any depth is safe."""
    max_depth = int(settings.JSON_MAX_DEPTH)
    max_length = int(settings.JSON_MAX_STRING_LENGTH)
    pending: list[tuple[Any, int]] = [(data, 0)]
    while pending:
        value, depth = pending.pop()
        kind = type(value)
        if kind is str:
            _check_text(value, max_length)
        elif kind is int:
            if not INT64_MIN <= value <= INT64_MAX:
                raise _out_of_range()
        elif kind is float:
            if not -(2.0**63) < value < 2.0**63:
                raise _out_of_range()
        elif kind is dict or kind is list:
            if depth >= max_depth:
                raise Problem(
                    f"The body nests arrays and objects deeper than {max_depth} levels.",
                    code="json-too-deep",
                )
            if kind is dict:
                for key in value:
                    _check_text(key, max_length)
                pending.extend((item, depth + 1) for item in value.values())
            else:
                pending.extend((item, depth + 1) for item in value)


class JSONParser(BaseParser):
    """`application/json` only; see the module docstring for the limits."""

    media_type = "application/json"

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        request = (parser_context or {}).get("request")
        meta = getattr(request, "META", {})
        limit = max_body_size()
        if _declared_length(meta) > limit:
            raise body_too_large()
        # DRF hands over the HttpRequest itself as the stream when nothing read the body
        # yet, and HttpRequest.read() does not apply DATA_UPLOAD_MAX_MEMORY_SIZE: read at most
        # one byte past the limit, whatever Content-Length said.
        try:
            body = stream.read(limit + 1)
        except RequestDataTooBig as exc:
            raise body_too_large() from exc
        return loads(body)
