from __future__ import annotations

import pytest

from servicekit.idempotency.services import request_fingerprint


def test_fingerprint_ignores_key_order_and_spacing() -> None:
    assert request_fingerprint(b'{"a": 1, "b": 2}') == request_fingerprint(b'{"b":2,"a":1}')
    assert request_fingerprint(b'{"a": 1}') != request_fingerprint(b'{"a": 2}')


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe", b""])
def test_fingerprint_of_other_bodies_is_their_bytes(body: bytes) -> None:
    assert request_fingerprint(body) == request_fingerprint(body)
    assert request_fingerprint(body) != request_fingerprint(body + b" ")
