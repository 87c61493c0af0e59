"""Serializer fields that take input as it is, never coerced.

DRF's fields are lenient: a CharField turns 5 and true into "5" and "True", an IntegerField
takes "5" and 5.0, a BooleanField takes "yes" and 1, a UUIDField takes an integer. In a JSON
body each of these is a client bug, so here a value must already have its JSON type. A query
string only has text, so fields read by a `QuerySerializer` parse text, strictly.

Text refuses control characters (C0, DEL, C1) and the Unicode line and paragraph separators:
a name or a title can end up in a mail header or a log line. `multiline=True` (descriptions,
message bodies) lets tab, line feed and carriage return through.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from django.http import QueryDict
from rest_framework import serializers
from rest_framework.fields import empty

from servicekit.parsers import INT64_MAX

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

INT32_MAX = 2**31 - 1  # PostgreSQL integer (PositiveIntegerField and the like)
BIGINT_MAX = INT64_MAX  # PostgreSQL bigint (every id)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_QUERY_INTEGER = re.compile(r"-?[0-9]{1,20}")


class QuerySerializer(serializers.Serializer[Any]):
    """Validates query parameters. A parameter given empty (`?search=`) is validated like any
    value, so it is refused rather than silently ignored; one given twice, or with a U+0000
    in it, is refused."""

    @classmethod
    def parse(cls, query: QueryDict) -> dict[str, Any]:
        """The validated parameters of `query` (a 400 naming the bad ones). When `query` names
        none of them and none is needed or has a default, that is `{}` without building the
        serializer: most list requests carry no parameters, and a serializer deep-copies its
        fields each time it is made."""
        if cls._optional_only() and not any(name in query for name in cls._declared_fields):
            return {}
        serializer = cls(data=query)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    @classmethod
    @functools.cache
    def _optional_only(cls) -> bool:
        fields = cls._declared_fields.values()
        return cls.validate is QuerySerializer.validate and all(
            not field.required and field.default is empty for field in fields
        )

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, QueryDict):
            errors = {}
            for name, values in data.lists():
                if name not in self.fields:
                    continue  # not ours: pagination's, or unknown and ignored
                if len(values) > 1:
                    errors[name] = ["Give this parameter once."]
                elif "\x00" in values[0]:
                    errors[name] = ["U+0000 is not allowed."]
            if errors:
                raise serializers.ValidationError(errors)
            data = data.dict()
        return super().to_internal_value(data)


def _from_query(field: serializers.Field[Any, Any, Any, Any]) -> bool:
    return isinstance(field.root, QuerySerializer)


class StringField(serializers.CharField):
    """A JSON string and nothing else; for secrets (passwords), whose characters are theirs."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class _NoControlCharacters(serializers.CharField):
    """The base of text fields; `multiline` lets tab, LF and CR through."""

    default_error_messages: ClassVar[dict[str, StrOrPromise]] = {
        "control": "Control characters are not allowed here."
    }
    multiline = False

    @property
    def schema_pattern(self) -> str:
        """The same rule for the OpenAPI schema (servicekit.openapi): text without them."""
        excluded = _CONTROL_BUT_LINES if self.multiline else _CONTROL
        # One or more: an allowed blank is its own `oneOf` branch (drf-spectacular).
        return f"^[^{excluded.pattern[1:-1]}]+$"

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        pattern = _CONTROL_BUT_LINES if self.multiline else _CONTROL
        if pattern.search(data):
            self.fail("control")
        return str(super().to_internal_value(data))


class TextField(_NoControlCharacters):
    def __init__(self, *, multiline: bool = False, **kwargs: Any) -> None:
        self.multiline = multiline
        super().__init__(**kwargs)


class EmailField(_NoControlCharacters, serializers.EmailField):
    pass


class SlugField(_NoControlCharacters, serializers.SlugField):
    pass


class UUIDField(serializers.UUIDField):
    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class IntegerField(serializers.IntegerField):
    """A JSON integer (not "5", 5.0 or true); in a query string, decimal digits."""

    def to_internal_value(self, data: Any) -> int:
        if _from_query(self):
            if not isinstance(data, str) or not _QUERY_INTEGER.fullmatch(data):
                self.fail("invalid")
            return int(data)
        if type(data) is not int:
            self.fail("invalid")
        return int(data)


def id_field(**kwargs: Any) -> IntegerField:
    """An id: a bigint key, so 1..2**63-1."""
    return IntegerField(min_value=1, max_value=BIGINT_MAX, **kwargs)


class BooleanField(serializers.BooleanField):
    """A JSON true or false; in a query string, `true` or `false`."""

    def to_internal_value(self, data: Any) -> bool:
        if _from_query(self) and data in ("true", "false"):
            return bool(data == "true")
        if type(data) is not bool:
            self.fail("invalid", input=data)
        return bool(data)


@functools.cache
def timezone_names() -> frozenset[str]:
    # `localtime` is the host's own zone file, not an IANA name.
    return frozenset(zoneinfo.available_timezones() - {"localtime", "posixrules"})


class TimezoneField(TextField):
    """An IANA time zone name (`Europe/Paris`), looked up in the list of names and never
    used as a path: `America` and `../etc/passwd` are refused like any unknown name."""

    default_error_messages: ClassVar[dict[str, StrOrPromise]] = {
        "unknown": "Unknown time zone (use an IANA name)."
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 64)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        name = super().to_internal_value(data)
        if name not in timezone_names():
            self.fail("unknown")
        return str(name)


class UrlField(_NoControlCharacters, serializers.URLField):
    """An absolute http(s) URL a server can call: a host name or IP literal (Django's
    URLValidator), no `user:password@`, a port in 1..65535, no `#fragment`, and one of
    `allowed_schemes()`."""

    default_error_messages: ClassVar[dict[str, StrOrPromise]] = {
        "scheme": "Use one of these schemes: {schemes}.",
        "userinfo": "A user name or password in the URL is not allowed.",
        "port": "The port must be between 1 and 65535.",
        "fragment": "A #fragment is not allowed.",
    }

    def __init__(self, *, schemes: tuple[str, ...] = ("https", "http"), **kwargs: Any) -> None:
        self.schemes = schemes
        super().__init__(**kwargs)

    def allowed_schemes(self) -> tuple[str, ...]:
        return self.schemes

    def to_internal_value(self, data: Any) -> str:
        url = str(super().to_internal_value(data))
        try:
            parts = urlsplit(url)
        except ValueError:  # e.g. an unclosed IPv6 bracket
            self.fail("invalid")
        schemes = self.allowed_schemes()
        if parts.scheme.lower() not in schemes:
            self.fail("scheme", schemes=", ".join(schemes))
        if "@" in parts.netloc:
            self.fail("userinfo")
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port is not None and not 1 <= port <= 65535:
            self.fail("port")
        if parts.fragment or url.endswith("#"):
            self.fail("fragment")
        return url


def validate_range(
    start: dt.datetime | dt.date | None,
    end: dt.datetime | dt.date | None,
    *,
    end_name: str,
    start_name: str,
    max_span: dt.timedelta | None = None,
    strict: bool = False,
) -> None:
    """`start <= end` (`start < end` if `strict`) and at most `max_span` apart; the error
    names the `end` field."""
    if start is None or end is None:
        return
    if end < start or (strict and end == start):
        word = "after" if strict else "on or after"
        raise serializers.ValidationError({end_name: [f"Must be {word} {start_name}."]})
    if max_span is not None and end - start > max_span:
        raise serializers.ValidationError(
            {end_name: [f"At most {max_span.days} days after {start_name}."]}
        )
