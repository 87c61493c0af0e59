"""Fixtures of the notifications service's tests: a stream of the test's own on the real NATS
server, and a real SMTP server on a free port (callers and tokens come from
servicekit.pytest_fixtures)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from notifications_service.testing import (
    SmtpRecorder,
    delete_stream,
    smtp_server,
    unique_bus_config,
)
from servicekit.bus import BusConfig, SyncBus
from servicekit.testing import free_port


@pytest.fixture
def bus_stream(settings: Any) -> Iterator[BusConfig]:
    """A fresh stream for this test; in-process code and child processes both use it."""
    config = unique_bus_config()
    settings.NATS_STREAM = config.stream
    settings.NATS_SUBJECT_PREFIX = config.subject_prefix
    yield config
    delete_stream(config)


@pytest.fixture
def bus(bus_stream: BusConfig) -> Iterator[SyncBus]:
    client = SyncBus(bus_stream, name="tests")
    client.connect()
    yield client
    client.close()


@pytest.fixture
def smtp(settings: Any) -> Iterator[SmtpRecorder]:
    port = free_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.DELIVERY_RETRY_BASE_SECONDS = 0.05
    settings.DELIVERY_RETRY_MAX_SECONDS = 0.5
    with smtp_server(port) as recorder:
        yield recorder
