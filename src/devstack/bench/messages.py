"""`python -m devstack.bench.messages`: msgspec against pydantic on a realistic envelope.

One round is what the bus does to a message: the producer's model encoded as the envelope
JSON, then decoded and validated into the typed model by a consumer. msgspec runs the real
path (`servicekit.messages`: the envelope first, then `data` into the model of its type);
pydantic runs an equivalent frozen model decoded in one step, its fastest way. pydantic is
not a dependency of the project: `pip install pydantic` to compare.
"""

from __future__ import annotations

import argparse
import datetime as dt
import timeit
import uuid
from decimal import Decimal
from typing import Any, Generic, TypeVar

from servicekit.messages import BookingCreated, Envelope, decode_envelope, encode_envelope


def _booking_created() -> BookingCreated:
    now = dt.datetime.now(dt.UTC)
    return BookingCreated(
        booking_id=184_467,
        user_id=uuid.uuid4(),
        organizer_id=uuid.uuid4(),
        kind="tickets",
        event_id=42,
        event_name="Jazz night at the Turnstile Hall",
        resource_id=None,
        resource_name=None,
        tickets_booked=2,
        start_time=None,
        end_time=None,
        status="pending",
        expires_at=now + dt.timedelta(minutes=15),
        amount=Decimal("37.50"),
        currency="EUR",
        reason=None,
    )


def _envelope(message: BookingCreated) -> Envelope[BookingCreated]:
    return Envelope(
        id=uuid.uuid4(),
        type=message.TYPE,
        occurred_at=dt.datetime.now(dt.UTC),
        producer="booking",
        version=1,
        data=message,
    )


def msgspec_round(envelope: Envelope[BookingCreated]) -> Any:
    decoded = decode_envelope(encode_envelope(envelope))
    assert decoded.data == envelope.data
    return decoded


def pydantic_round_factory(envelope: Envelope[BookingCreated]) -> Any:
    import pydantic

    data_t = TypeVar("data_t")

    class PydanticBookingCreated(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(frozen=True, extra="ignore")
        booking_id: int
        user_id: uuid.UUID
        organizer_id: uuid.UUID
        kind: str
        event_id: int | None
        event_name: str | None
        resource_id: int | None
        resource_name: str | None
        tickets_booked: int | None
        start_time: pydantic.AwareDatetime | None
        end_time: pydantic.AwareDatetime | None
        status: str
        expires_at: pydantic.AwareDatetime | None
        amount: Decimal
        currency: str
        reason: str | None

    class PydanticEnvelope(pydantic.BaseModel, Generic[data_t]):
        model_config = pydantic.ConfigDict(frozen=True, extra="ignore")
        id: uuid.UUID
        type: str
        occurred_at: pydantic.AwareDatetime
        producer: str = ""
        version: int = 1
        data: data_t

    typed = PydanticEnvelope[PydanticBookingCreated]
    model = typed.model_validate_json(encode_envelope(envelope))

    def pydantic_round() -> Any:
        decoded = typed.model_validate_json(model.model_dump_json())
        assert decoded.data == model.data
        return decoded

    return pydantic_round


def per_round(function: Any, rounds: int, repeat: int) -> float:
    """Microseconds per round, the best of `repeat` runs (the least disturbed by others)."""
    return min(timeit.repeat(function, number=rounds, repeat=repeat)) / rounds * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    envelope = _envelope(_booking_created())
    size = len(encode_envelope(envelope))
    print(f"booking.created envelope, {size} bytes; encode + decode + validate, best of")
    print(f"{args.repeat} x {args.rounds} rounds")
    fast = per_round(lambda: msgspec_round(envelope), args.rounds, args.repeat)
    print(f"  msgspec   {fast:7.2f} µs/round")
    try:
        pydantic_round = pydantic_round_factory(envelope)
    except ImportError:
        print("  pydantic  not installed (pip install pydantic to compare)")
        return 0
    slow = per_round(pydantic_round, args.rounds, args.repeat)
    print(f"  pydantic  {slow:7.2f} µs/round")
    print(f"  msgspec is {slow / fast:.1f}x faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
