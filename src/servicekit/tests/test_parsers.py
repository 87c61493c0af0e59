"""The JSON parser's limits, the strict fields, path ids and page parameters, on their own.
Each service's test_apis show the same limits through its real endpoints."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.http import QueryDict
from django.test import RequestFactory
from django.urls import Resolver404, URLResolver
from django.urls.resolvers import RegexPattern
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request

from servicekit import fields, parsers
from servicekit.pagination import PageNumberPagination
from servicekit.problems import Problem
from servicekit.urls import route


def refusal(body: bytes) -> tuple[int, str]:
    with pytest.raises(Problem) as caught:
        parsers.loads(body)
    return caught.value.status_code, caught.value.problem_code


class TestLoads:
    @pytest.mark.parametrize(
        ("body", "code"),
        [
            (b"[" * 50_000, "malformed-json"),
            (b'{"a": NaN}', "malformed-json"),
            (b'{"a": Infinity}', "malformed-json"),
            (b'{"a": -Infinity}', "malformed-json"),
            (b'{"a": "\xff\xfe"}', "malformed-json"),
            (b'{"a": "\\ud800"}', "malformed-json"),
            (b'{"a": 1} x', "malformed-json"),
            (b'{"a": 1e400}', "json-number-out-of-range"),
            (b'{"a": -1e400}', "json-number-out-of-range"),
            (json.dumps({"a": 2**70}).encode(), "json-number-out-of-range"),
            (json.dumps({"a": 2**63}).encode(), "json-number-out-of-range"),
            (json.dumps({"a": -(2**63) - 1}).encode(), "json-number-out-of-range"),
            (b'{"a": 1e300}', "json-number-out-of-range"),
            (b'{"a": "x\\u0000y"}', "json-nul-character"),
            (b'{"a\\u0000": 1}', "json-nul-character"),
            (b"[" * 33 + b"]" * 33, "json-too-deep"),
            (b'{"a":' * 33 + b"1" + b"}" * 33, "json-too-deep"),
            (json.dumps({"a": "x" * 16_385}).encode(), "json-string-too-long"),
            (json.dumps({"x" * 16_385: 1}).encode(), "json-string-too-long"),
        ],
    )
    def test_refused_bodies_are_400_problems_with_their_code(self, body: bytes, code: str) -> None:
        assert refusal(body) == (400, code)

    def test_within_the_limits(self) -> None:
        body = {
            "deep": json.loads("[" * 31 + "]" * 31),
            "text": "x" * 16_384,
            "tab": "a\tb\nc",
            "numbers": [2**63 - 1, -(2**63), 1.5e18, -0.0],
        }
        assert parsers.loads(json.dumps(body).encode()) == body

    def test_bodies_over_the_size_limit_are_413(self, settings: Any) -> None:
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
        assert refusal(b'"' + b"x" * 100 + b'"') == (413, "body-too-large")


class TestJSONParser:
    def parse(self, stream: Any, content_length: str | None) -> Any:
        """`stream` is what the server hands over, whatever Content-Length says."""
        request = RequestFactory().post("/", data=b"", content_type="application/json")
        request.META.pop("CONTENT_LENGTH", None)
        if content_length is not None:
            request.META["CONTENT_LENGTH"] = content_length
        return parsers.JSONParser().parse(stream, "application/json", {"request": request})

    def test_a_body_longer_than_its_content_length_says_is_still_limited(
        self, settings: Any
    ) -> None:
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64
        stream = io.BytesIO(json.dumps(["x" * 200]).encode())
        for declared in ("10", None, "junk"):
            with pytest.raises(Problem) as caught:
                self.parse(stream, declared)
            assert caught.value.status_code == 413
            stream.seek(0)

    def test_a_declared_length_over_the_limit_is_refused_before_reading(
        self, settings: Any
    ) -> None:
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64

        class Unreadable(io.RawIOBase):
            def read(self, size: int = -1) -> bytes:
                raise AssertionError("read")

        with pytest.raises(Problem) as caught:
            self.parse(Unreadable(), "65")
        assert caught.value.status_code == 413

    def test_parses_within_the_limits(self) -> None:
        assert self.parse(io.BytesIO(b'{"a": [1]}'), "10") == {"a": [1]}


class Body(serializers.Serializer[Any]):
    name = fields.TextField(max_length=20, required=False)
    notes = fields.TextField(multiline=True, required=False)
    secret = fields.StringField(required=False, trim_whitespace=False)
    count = fields.IntegerField(required=False, min_value=0, max_value=fields.INT32_MAX)
    flag = fields.BooleanField(required=False)
    owner = fields.UUIDField(required=False)
    zone = fields.TimezoneField(required=False)
    email = fields.EmailField(required=False)


def errors_of(serializer: serializers.Serializer[Any]) -> dict[str, Any]:
    assert not serializer.is_valid()
    return dict(serializer.errors)


class TestStrictFields:
    @pytest.mark.parametrize(
        "data",
        [
            {"name": 5},
            {"name": True},
            {"name": ["a"]},
            {"name": {"a": 1}},
            {"name": "Grace\r\nBcc: x@example.com"},
            {"name": "a\x00b"},
            {"name": "tab\there"},
            {"name": "esc\x1b[31m"},
            {"name": "c1\x85"},
            {"name": "sep\u2028"},
            {"name": "x" * 21},
            {"notes": "nul\x00"},
            {"notes": "bell\x07"},
            {"secret": 12345678},
            {"count": "5"},
            {"count": 5.0},
            {"count": True},
            {"count": 2**31},
            {"count": -1},
            {"flag": "true"},
            {"flag": 1},
            {"flag": None},
            {"owner": 5},
            {"zone": "America"},
            {"zone": "../etc/passwd"},
            {"zone": "/usr/share/zoneinfo/UTC"},
            {"zone": ""},
            {"zone": "localtime"},
            {"zone": 5},
            {"email": "a@example.com\r\nBcc: b@example.com"},
            {"email": 5},
        ],
    )
    def test_refused_with_the_field_named(self, data: dict[str, Any]) -> None:
        assert set(errors_of(Body(data=data))) == set(data)

    def test_accepted(self) -> None:
        data = {
            "name": "  Grace Hopper ",
            "notes": "line\r\nline\ttab",
            "secret": " \x01 any ",
            "count": 2**31 - 1,
            "flag": False,
            "owner": "9d7e8f5e-54a1-4c3b-9a51-1c4f4f9a5a10",
            "zone": "America/New_York",
            "email": "grace@example.com",
        }
        serializer = Body(data=data)
        assert serializer.is_valid(), serializer.errors
        assert serializer.validated_data["name"] == "Grace Hopper"
        assert serializer.validated_data["secret"] == " \x01 any "


class Query(fields.QuerySerializer):
    q = fields.TextField(required=False, max_length=10)
    event = fields.id_field(required=False)
    unread = fields.BooleanField(required=False, allow_null=True, default=None)


class TestQuerySerializer:
    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("q=", "q"),
            ("q=a%00b", "q"),
            ("q=a&q=b", "q"),
            ("event=", "event"),
            ("event=abc", "event"),
            ("event=1.0", "event"),
            ("event=0", "event"),
            ("event=-1", "event"),
            ("event=9223372036854775808", "event"),
            ("event=" + "9" * 5000, "event"),
            ("unread=", "unread"),
            ("unread=yes", "unread"),
        ],
    )
    def test_refused_with_the_field_named(self, query: str, field: str) -> None:
        assert set(errors_of(Query(data=QueryDict(query)))) == {field}

    def test_accepted(self) -> None:
        serializer = Query(data=QueryDict("q=jazz&event=9223372036854775807&unread=false&x=1"))
        assert serializer.is_valid(), serializer.errors
        assert serializer.validated_data == {
            "q": "jazz",
            "event": 2**63 - 1,
            "unread": False,
        }


class TestUrlField:
    field = fields.UrlField(max_length=2000, schemes=("https",))

    @pytest.mark.parametrize(
        "url",
        [
            "https://example.com:99999/hook",
            "https://example.com:0/hook",
            "ftp://example.com/hook",
            "http://example.com/hook",
            "https://user:pw@example.com/hook",
            "https://user@example.com/hook",
            "https:///hook",
            "https://",
            "https://example.com/hook#part",
            "https://example.com/hook#",
            "https://exa mple.com/hook",
            "https://example.com/\r\nX-Injected: 1",
            "/relative/hook",
            "https://example.com/" + "a" * 2000,
            5,
        ],
    )
    def test_refused(self, url: Any) -> None:
        with pytest.raises(ValidationError):
            self.field.run_validation(url)

    @pytest.mark.parametrize(
        "url",
        [
            "https://example.com/hook",
            "https://hooks.example.com:8443/a/b?c=d",
            "https://192.0.2.1/hook",
            "https://[2001:db8::1]:443/hook",
        ],
    )
    def test_accepted(self, url: str) -> None:
        assert self.field.run_validation(url) == url


class TestPathIds:
    resolver = URLResolver(RegexPattern(r"^/"), [route("things/<int:pk>", lambda r, pk: pk)])

    @pytest.mark.parametrize(
        "path",
        ["/things/1", "/things/42/", f"/things/{2**63 - 1}"],
    )
    def test_ids_in_range_resolve(self, path: str) -> None:
        assert self.resolver.resolve(path).kwargs["pk"] == path.split("/")[2]

    @pytest.mark.parametrize(
        "path",
        [
            "/things/0",
            f"/things/{2**63}",
            "/things/99999999999999999999",
            "/things/" + "9" * 5000,
            "/things/-1",
            "/things/abc",
            "/things/1.5",
        ],
    )
    def test_ids_out_of_range_do_not_resolve(self, path: str) -> None:
        with pytest.raises(Resolver404):
            self.resolver.resolve(path)


class TestPagination:
    def paginate(self, query: str, items: int = 25) -> list[Any] | None:
        request = Request(RequestFactory().get(f"/?{query}"))
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(list(range(items)), request)
        assert paginator.page is not None
        self.count = paginator.page.paginator.count
        return page

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("page=0", "page"),
            ("page=-1", "page"),
            ("page=abc", "page"),
            ("page=", "page"),
            ("page=last", "page"),
            ("page=9223372036854775808", "page"),
            ("page_size=0", "page_size"),
            ("page_size=101", "page_size"),
            ("page_size=abc", "page_size"),
        ],
    )
    def test_bad_page_parameters_are_400_naming_them(self, query: str, field: str) -> None:
        with pytest.raises(ValidationError) as caught:
            self.paginate(query)
        assert set(caught.value.detail) == {field}

    @pytest.mark.parametrize("query", ["page=2&page_size=25", "page=3", f"page={2**63 - 1}"])
    def test_a_page_past_the_last_is_404(self, query: str) -> None:
        with pytest.raises(NotFound):
            self.paginate(query)

    def test_pages(self) -> None:
        assert self.paginate("page=2&page_size=10") == list(range(10, 20))
        assert self.count == 25
        assert self.paginate("page_size=100") == list(range(25))
        assert self.paginate("") == list(range(20))

    def test_an_empty_list_has_an_empty_first_page(self) -> None:
        assert self.paginate("", items=0) == []
        assert self.count == 0
        with pytest.raises(NotFound):
            self.paginate("page=2", items=0)

    def test_schema_documents_the_bounds(self) -> None:
        parameters = {
            p["name"]: p["schema"]
            for p in PageNumberPagination().get_schema_operation_parameters(view=None)
        }
        assert parameters["page"] == {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
        assert parameters["page_size"] == {"type": "integer", "minimum": 1, "maximum": 100}


class TestQueryParse:
    """`QuerySerializer.parse` skips the serializer only when that changes nothing."""

    class Optional(fields.QuerySerializer):
        status = serializers.ChoiceField(choices=["a", "b"], required=False)

    class Defaulted(fields.QuerySerializer):
        size = fields.IntegerField(min_value=1, max_value=9, default=5)

    class Checked(fields.QuerySerializer):
        status = serializers.ChoiceField(choices=["a", "b"], required=False)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            raise serializers.ValidationError("checked")

    def test_no_parameters_no_serializer(self) -> None:
        assert self.Optional.parse(QueryDict("other=1")) == {}

    def test_parameters_are_validated(self) -> None:
        assert self.Optional.parse(QueryDict("status=a")) == {"status": "a"}
        with pytest.raises(ValidationError):
            self.Optional.parse(QueryDict("status=c"))
        with pytest.raises(ValidationError):
            self.Optional.parse(QueryDict("status=a&status=b"))

    def test_a_default_is_given_with_no_parameters(self) -> None:
        assert self.Defaulted.parse(QueryDict("")) == {"size": 5}

    def test_a_serializer_check_runs_with_no_parameters(self) -> None:
        with pytest.raises(ValidationError):
            self.Checked.parse(QueryDict(""))
