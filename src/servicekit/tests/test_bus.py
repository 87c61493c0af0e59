"""The stream the code creates on the real NATS server."""

from __future__ import annotations

import uuid

import pytest
from nats.js import api

from servicekit.bus import (
    DUPLICATE_WINDOW_SECONDS,
    BusConfig,
    SyncBus,
    backoff_delay,
    bus_config,
    stream_config,
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
    suffix = uuid.uuid4().hex[:8]
    config = BusConfig(
        servers=bus_config().servers,
        stream=f"TEST_{suffix.upper()}",
        subject_prefix=f"test{suffix}",
        replicas=1,
    )
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
