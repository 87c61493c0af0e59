from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import orjson
import pytest
from django.utils.translation import gettext_lazy
from rest_framework import renderers
from rest_framework.exceptions import ErrorDetail

from servicekit.renderers import JSONRenderer

WHEN = dt.datetime(2026, 12, 2, 6, 30, 1, 250_000, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "data",
    [
        {"count": 2, "next": None, "results": [{"id": 1, "name": "Über café ☕"}]},
        {"at": WHEN, "on": WHEN.date(), "time": WHEN.time(), "whole": WHEN.replace(microsecond=0)},
        {"naive": dt.datetime(2026, 1, 1, 12), "took": dt.timedelta(seconds=90)},
        {"amount": decimal.Decimal("12.50"), "id": uuid.UUID(int=7)},
        {"detail": ErrorDetail("Not found.", code="not_found"), "lazy": gettext_lazy("Invalid")},
        {"errors": {"tickets_booked": [ErrorDetail("Must be at least 1.", code="min_value")]}},
        [1, 2.5, True, None, "x"],
        {1: "int key"},
    ],
)
def test_the_same_bytes_as_drf(data: Any) -> None:
    assert JSONRenderer().render(data) == renderers.JSONRenderer().render(data)


def test_pre_encoded_json_goes_out_as_it_is() -> None:
    body = JSONRenderer().render({"results": [orjson.Fragment(b'{"id":1,"at":"x"}')]})
    assert body == b'{"results":[{"id":1,"at":"x"}]}'


def test_nothing_renders_as_an_empty_body() -> None:
    assert JSONRenderer().render(None) == b""


def test_an_indent_asked_for_is_drf_s() -> None:
    data = {"a": [1, 2]}
    indented = JSONRenderer().render(data, "application/json; indent=2")
    assert indented == renderers.JSONRenderer().render(data, "application/json; indent=2")
    assert b"\n" in indented
