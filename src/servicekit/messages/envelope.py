"""The envelope every message travels in, and its decoding into the typed models.

The envelope is what the outbox relay publishes: `id` (the broker's de-duplication key and
the consumers' idempotency key), `type` (the subject below the prefix), `occurred_at`,
`producer`, `version` and `data`. `decode_envelope` reads the envelope, then `data` into the
model of its `type`; a type no model declares keeps its `data` as a plain object, so a
consumer subscribed to `booking.>` passes over a type added later instead of failing on it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Generic, TypeVar

import msgspec

from servicekit.messages.models import MESSAGE_TYPES, AwareDatetime, Message

DataT = TypeVar("DataT")


class PoisonMessageError(ValueError):
    """The message can never be handled: not an envelope, or its data does not match the model
    of its type. It goes to the dead letters. `message_id` and `message_type` are set when the
    envelope itself could be read."""

    def __init__(
        self, reason: str, *, message_id: uuid.UUID | None = None, message_type: str = ""
    ) -> None:
        super().__init__(reason)
        self.message_id = message_id
        self.message_type = message_type


class Envelope(msgspec.Struct, Generic[DataT], frozen=True, kw_only=True):
    id: uuid.UUID
    type: str
    occurred_at: AwareDatetime
    # Both were optional in the first envelopes; they still are when decoding.
    producer: str = ""
    version: int = 1
    data: DataT


# What a consumer reads: the typed model, or the plain object of a type it does not know.
IncomingData = Message | dict[str, Any]
IncomingEnvelope = Envelope[IncomingData]

_head_decoder = msgspec.json.Decoder(Envelope[msgspec.Raw])
_object_decoder = msgspec.json.Decoder(dict[str, Any])
_data_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    type_: msgspec.json.Decoder(model) for type_, model in MESSAGE_TYPES.items()
}
_encoder = msgspec.json.Encoder()


def decode_envelope(raw: bytes) -> Envelope[IncomingData]:
    """The envelope with its data decoded; `PoisonMessageError` when either does not match."""
    try:
        head = _head_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise PoisonMessageError(f"invalid envelope: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise PoisonMessageError(f"not JSON: {exc}") from exc
    decoder = _data_decoders.get(head.type, _object_decoder)
    try:
        data = decoder.decode(head.data)
    except msgspec.DecodeError as exc:
        raise PoisonMessageError(
            f"{head.type} data does not match its model: {exc}",
            message_id=head.id,
            message_type=head.type,
        ) from exc
    return Envelope(
        id=head.id,
        type=head.type,
        occurred_at=head.occurred_at,
        producer=head.producer,
        version=head.version,
        data=data,
    )


def encode_envelope(envelope: Envelope[Any]) -> bytes:
    """The JSON a relay publishes; `data` may be a model or its stored (builtin) encoding."""
    return _encoder.encode(envelope)


def message_to_builtins(message: Message) -> dict[str, Any]:
    """The message as JSON-ready builtins: what the outbox stores in its `data` column.

    A model's constructor does not check types, so the encoding is decoded back into the model
    before it is returned: a producer that puts a wrong value in a field fails in its own
    transaction (`msgspec.ValidationError`) instead of publishing what no consumer can read.
    """
    data: dict[str, Any] = msgspec.to_builtins(message)
    msgspec.convert(data, type(message))
    return data


def encode_datetime(value: dt.datetime) -> str:
    """A datetime as the messages carry it (RFC 3339, `Z` for UTC), for payloads built
    elsewhere than in a model (the batched booking path writes them in SQL)."""
    text: str = msgspec.to_builtins(value)
    return text


def message_decode(message_type: str, data: bytes) -> Message:
    """`data` (JSON) as the model of `message_type`; `msgspec.ValidationError` if it does not
    match, `KeyError` for a type no model declares."""
    message: Message = _data_decoders[message_type].decode(data)
    return message


def message_convert(message_type: str, data: dict[str, Any]) -> Message:
    """`data` (decoded JSON: a stored outbox row, say) as the model of `message_type`."""
    message: Message = msgspec.convert(data, MESSAGE_TYPES[message_type])
    return message
