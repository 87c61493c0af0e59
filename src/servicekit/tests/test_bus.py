"""The stream the code creates on the real NATS server."""

from __future__ import annotations

import uuid

import pytest
from nats.js import api

from servicekit.bus import (
    DUPLICATE_WINDOW_SECONDS,
    BusConfig,
    BusUnavailableError,
    OutgoingMessage,
    SyncBus,
    backoff_delay,
    bus_config,
    stream_config,
)


def _test_config() -> BusConfig:
    suffix = uuid.uuid4().hex[:8]
    return BusConfig(
        servers=bus_config().servers,
        stream=f"TEST_{suffix.upper()}",
        subject_prefix=f"test{suffix}",
        replicas=1,
    )


def test_config_reads_the_environment(monkeypatch: pytest.MonkeyPatch, settings) -> None:  # type: ignore[no-untyped-def]
    settings.NATS_URL = "nats://a:4222, nats://b:4222,nats://c:4222"
    monkeypatch.setenv("NATS_STREAM_REPLICAS", "3")
    config = bus_config()
    assert config.servers == ("nats://a:4222", "nats://b:4222", "nats://c:4222")
    assert config.replicas == 3
    assert config.stream == "TURNSTILE"
    assert config.subject_for("booking.confirmed") == "turnstile.booking.confirmed"
    assert config.type_from_subject("turnstile.booking.confirmed") == "booking.confirmed"
    wanted = stream_config(config)
    assert wanted.num_replicas == 3
    assert wanted.subjects == ["turnstile.>"]


def test_stream_is_created_on_disk_with_a_long_duplicate_window() -> None:
    config = _test_config()
    suffix = config.subject_prefix.removeprefix("test")
    bus = SyncBus(config, name="tests")
    try:
        bus.connect()
        info = bus.call(bus.js.stream_info(config.stream))
        assert info.config.storage == api.StorageType.FILE
        assert info.config.duplicate_window >= 10 * 60
        assert info.config.duplicate_window == DUPLICATE_WINDOW_SECONDS
        assert info.config.subjects == [f"test{suffix}.>"]
        first = bus.publish(message_type="user.updated", payload=b"{}", msg_id="same-id")
        second = bus.publish(message_type="user.updated", payload=b"{}", msg_id="same-id")
        assert not first.duplicate
        assert second.duplicate
        assert second.seq == first.seq
        bus.call(bus.js.delete_stream(config.stream))
    finally:
        bus.close()


def test_backoff_is_exponential_and_capped() -> None:
    delays = [backoff_delay(n, initial=0.5, maximum=4) for n in range(0, 7)]
    assert delays == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def _outgoing(*ids: str, size: int = 2) -> list[OutgoingMessage]:
    return [
        OutgoingMessage(message_type="user.updated", payload=b"{" + b" " * (size - 2) + b"}",
                        msg_id=msg_id)
        for msg_id in ids
    ]  # fmt: skip


def test_a_pipelined_batch_gets_each_message_its_own_answer_in_order() -> None:
    """publish_many writes the batch with one reply subject per message and settles each from
    the stream's answer: a PubAck per message in order, the broker's de-duplication per
    message, and a refusal (too large, before it left) that is that message's alone."""
    config = _test_config()
    bus = SyncBus(config, name="tests")
    try:
        bus.connect()
        first = bus.publish_many(_outgoing(*(f"id-{n}" for n in range(50))))
        assert [ack.seq for ack in first] == list(range(1, 51))  # type: ignore[union-attr]
        assert not any(ack.duplicate for ack in first)  # type: ignore[union-attr]
        too_large = bus.js._nc.max_payload + 1
        mixed = _outgoing("id-7", "new-1") + _outgoing("big", size=too_large) + _outgoing("new-2")
        again = bus.publish_many(mixed)
        acks = [result if isinstance(result, api.PubAck) else None for result in again]
        assert [(ack.seq, bool(ack.duplicate)) if ack else None for ack in acks] == [
            (8, True), (51, False), None, (52, False)
        ]  # fmt: skip
        assert isinstance(again[2], BusUnavailableError)
        assert "MaxPayload" in str(again[2])
        info = bus.call(bus.js.stream_info(config.stream))
        assert info.state.messages == 52
        assert bus.publish_many([]) == []
    finally:
        bus.call(bus.js.delete_stream(config.stream))
        bus.close()


def test_the_stream_s_refusals_are_each_message_s_own() -> None:
    """Answers other than a PubAck: the stream is not the one the publisher expects (an
    error answer), and no stream takes the subject (no responders)."""
    config = _test_config()
    elsewhere = BusConfig(
        servers=config.servers,
        stream=f"{config.stream}_OTHER",
        subject_prefix=config.subject_prefix,
        replicas=1,
    )
    bus = SyncBus(config, name="tests")
    mistaken = SyncBus(elsewhere, name="tests-mistaken")
    try:
        bus.connect()
        with pytest.raises(BusUnavailableError, match="overlap"):
            mistaken.connect()  # its stream cannot take subjects another stream has
        mistaken._stream_ready = True  # publish as if its stream were the subjects' stream
        results = mistaken.publish_many(_outgoing("a", "b"))
        assert all(isinstance(result, BusUnavailableError) for result in results)
        assert all("expected stream does not match" in str(result) for result in results)
        bus.call(bus.js.delete_stream(config.stream))
        results = bus.publish_many(_outgoing("c"), timeout=2)
        assert isinstance(results[0], BusUnavailableError)
        assert "NoStreamResponse" in str(results[0])
    finally:
        mistaken.close()
        bus.close()
