"""Test helpers: a stream of one's own on the real NATS server, a real SMTP server that can
refuse mail for a while, messages published as producers publish them, and service processes
started against the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aiosmtpd.controller import Controller

from servicekit.bus import BusConfig, SyncBus, bus_config

SRC = Path(__file__).resolve().parents[1]


def envelope(
    message_type: str, data: dict[str, Any], *, message_id: uuid.UUID | None = None
) -> dict[str, Any]:
    return {
        "id": str(message_id or uuid.uuid4()),
        "type": message_type,
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "tests",
        "version": 1,
        "data": data,
    }


def publish(bus: SyncBus, document: dict[str, Any], *, msg_id: str | None = None) -> None:
    bus.publish(
        message_type=document["type"],
        payload=json.dumps(document).encode(),
        msg_id=msg_id or document["id"],
    )


def unique_bus_config() -> BusConfig:
    """A stream and subject prefix no other test uses, on the test NATS server."""
    suffix = uuid.uuid4().hex[:10]
    base = bus_config()
    return BusConfig(
        servers=base.servers,
        stream=f"TEST_{suffix.upper()}",
        subject_prefix=f"test{suffix}",
        replicas=1,
    )


def delete_stream(config: BusConfig) -> None:
    bus = SyncBus(config, name="tests-cleanup")
    try:
        bus.connect()
        bus.call(bus.js.delete_stream(config.stream))
    except Exception:  # noqa: S110  (the server may be gone: nothing to clean)
        pass
    finally:
        bus.close()


# SMTP -----------------------------------------------------------------------------------


@dataclass
class SmtpRecorder:
    """aiosmtpd handler: refuses DATA with 451 while `refusing` is set, else records it."""

    messages: list[EmailMessage] = field(default_factory=list)
    # The SMTP sessions (connections) that delivered a message.
    sessions: set[int] = field(default_factory=set)
    refused: int = 0
    refusing: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            if self.refusing:
                self.refused += 1
                return "451 4.3.0 Try again later"
            message = message_from_bytes(envelope.content, policy=policy.default)
            self.sessions.add(id(session))
            if isinstance(message, EmailMessage):
                self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]


@contextmanager
def smtp_server(port: int) -> Iterator[SmtpRecorder]:
    recorder = SmtpRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield recorder
    finally:
        controller.stop()


# Processes ------------------------------------------------------------------------------


def database_url_for(name: str) -> str:
    parts = urlsplit(os.environ["TURNSTILE_TEST_POSTGRES_URL"])
    return urlunsplit(parts._replace(path=f"/{name}"))


def process_env(config: BusConfig, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "NATS_URL": ",".join(config.servers),
            "NATS_STREAM": config.stream,
            "NATS_SUBJECT_PREFIX": config.subject_prefix,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(SRC),
        }
    )
    env.update(extra)
    return env


def start_process(
    package: str, args: list[str], env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(  # noqa: S603  (our own interpreter and module)
        [sys.executable, "-m", package, *args],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
