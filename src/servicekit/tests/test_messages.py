"""The message contracts: examples valid against the generated document, decoding strict on
declared fields and lenient on the rest, producers unable to store what the model refuses."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import jsonschema
import msgspec
import pytest

from servicekit.messages import (
    MESSAGE_MODELS,
    MESSAGE_TYPES,
    BookingCreated,
    Envelope,
    PoisonMessageError,
    UserUpdated,
    asyncapi,
    decode_envelope,
    encode_envelope,
    message_to_builtins,
)
from servicekit.messages.examples import EXAMPLES, example_data


def _raw(message_type: str, data: Any, **envelope: Any) -> bytes:
    document = {
        "id": str(uuid.uuid4()),
        "type": message_type,
        "occurred_at": "2030-01-01T10:00:00+00:00",
        "producer": "tests",
        "version": 1,
        "data": data,
        **envelope,
    }
    return msgspec.json.encode(document)


def test_every_type_has_a_model_and_an_example() -> None:
    assert set(MESSAGE_TYPES) == set(EXAMPLES) == {model.TYPE for model in MESSAGE_MODELS}
    assert len(MESSAGE_MODELS) == 12


@pytest.mark.parametrize("message_type", sorted(EXAMPLES))
def test_an_envelope_survives_the_bus(message_type: str) -> None:
    message = EXAMPLES[message_type]
    envelope = Envelope(
        id=uuid.uuid4(),
        type=message_type,
        occurred_at=dt.datetime.now(dt.UTC),
        producer="tests",
        data=message,
    )
    decoded = decode_envelope(encode_envelope(envelope))
    assert decoded == envelope
    assert type(decoded.data) is type(message)


@pytest.mark.parametrize("message_type", sorted(EXAMPLES))
def test_the_examples_match_the_asyncapi_document(message_type: str) -> None:
    document = asyncapi.document()
    key = asyncapi._channel_id(message_type)
    message = document["components"]["messages"][key]
    assert document["channels"][key]["address"] == f"turnstile.{message_type}"
    schema = {**document, "$ref": f"#/components/messages/{key}/payload"}
    jsonschema.Draft202012Validator(schema).validate(message["examples"][0]["payload"])
    wrong = {**message["examples"][0]["payload"], "data": {}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(wrong)


def test_the_committed_asyncapi_document_is_current() -> None:
    assert asyncapi.DOCUMENT.read_text() == asyncapi.render()


def test_the_old_datetime_form_still_decodes() -> None:
    data = example_data("booking.created", expires_at="2030-01-01T10:15:00.123456+00:00")
    decoded = decode_envelope(_raw("booking.created", data))
    assert isinstance(decoded.data, BookingCreated)
    assert decoded.data.expires_at == dt.datetime(2030, 1, 1, 10, 15, 0, 123456, tzinfo=dt.UTC)
    assert decoded.occurred_at == dt.datetime(2030, 1, 1, 10, tzinfo=dt.UTC)


def test_unknown_fields_are_ignored() -> None:
    data = {**example_data("user.updated"), "nickname": "ada"}
    decoded = decode_envelope(_raw("user.updated", data, trace_id="abc"))
    assert decoded.data == EXAMPLES["user.updated"]


def test_an_unknown_type_keeps_its_data_as_an_object() -> None:
    decoded = decode_envelope(_raw("booking.rebooked", {"anything": [1]}))
    assert decoded.data == {"anything": [1]}
    with pytest.raises(PoisonMessageError):
        decode_envelope(_raw("booking.rebooked", [1]))


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"booking_id": 1}, "missing required field"),
        (example_data("booking.created", booking_id="1"), "`$.booking_id`"),
        (example_data("booking.created", user_id="user-1"), "`$.user_id`"),
        (example_data("booking.created", tickets_booked="2"), "`$.tickets_booked`"),
        (example_data("booking.created", expires_at="2030-01-01T10:00:00"), "`$.expires_at`"),
        ("not an object", "Expected `object`"),
    ],
)
def test_data_that_does_not_match_its_model_is_poison(data: Any, words: str) -> None:
    raw = _raw("booking.created", data)
    with pytest.raises(PoisonMessageError, match="does not match its model") as caught:
        decode_envelope(raw)
    assert words in str(caught.value)
    assert caught.value.message_type == "booking.created"
    assert str(caught.value.message_id) == msgspec.json.decode(raw)["id"]


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "invalid envelope"),
        (_raw("user.updated", {}, occurred_at="2030-01-01T10:00:00"), "invalid envelope"),
        (_raw("user.updated", {}, id="seven"), "invalid envelope"),
        (_raw("user.updated", {}, version="1"), "invalid envelope"),
    ],
)
def test_what_is_not_an_envelope_is_poison(raw: bytes, words: str) -> None:
    with pytest.raises(PoisonMessageError, match=words) as caught:
        decode_envelope(raw)
    assert caught.value.message_id is None


def test_a_producer_cannot_store_a_wrong_value() -> None:
    wrong = UserUpdated(user_id="not-a-uuid", name="Ada", email="a@example.com", role="x")  # type: ignore[arg-type]
    with pytest.raises(msgspec.ValidationError):
        message_to_builtins(wrong)
    right = UserUpdated(user_id=uuid.uuid4(), name="Ada", email="a@example.com", role="x")
    assert message_to_builtins(right)["user_id"] == str(right.user_id)
