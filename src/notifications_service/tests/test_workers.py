"""The service's worker commands run on servicekit.workers: each beats while it is idle, and
one SIGTERM stops it within a second, with status 0 (the loop itself is tested in
servicekit/tests/test_workers.py)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from notifications_service.testing import process_env, start_process, stop_process
from servicekit.bus import BusConfig
from servicekit.testing import current_database_url, logged_at, wait_until
from servicekit.workers import (
    HEARTBEAT_WRITE_SECONDS,
    WAIT_SLICE_SECONDS,
    heartbeat_fresh,
    heartbeat_path,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# How old the file of an idle, healthy worker gets by design: it is written at most once a
# HEARTBEAT_WRITE_SECONDS, at the next beat after that (loops beat once a wait slice), with
# the oldest of its loops' beats (the consumers' three loops each beat at least once a wait
# slice or a fetch of as long); plus half a second for a busy machine.
IDLE_MAX_AGE = HEARTBEAT_WRITE_SECONDS + 2 * WAIT_SLICE_SECONDS + 0.5


@pytest.mark.parametrize(
    ("args", "stopped"),
    [
        (["consume_events"], "consumer notifications stopped"),
        (["dispatch_deliveries", "--poll-interval", "60"], "delivery dispatcher stopped"),
    ],
)
def test_the_worker_beats_while_idle_and_one_sigterm_stops_it_with_status_0(
    bus_stream: BusConfig, settings: Any, tmp_path: Path, args: list[str], stopped: str
) -> None:
    name = args[0]
    settings.WORKER_HEARTBEAT_DIR = str(tmp_path / "heartbeats")
    env = process_env(
        bus_stream,
        DATABASE_URL=current_database_url(),
        WORKER_HEARTBEAT_DIR=settings.WORKER_HEARTBEAT_DIR,
    )
    log = tmp_path / "worker.log"
    worker = start_process("notifications_service", args, env, log)
    try:
        assert wait_until(lambda: heartbeat_fresh(name, IDLE_MAX_AGE), 30), log.read_text()
        assert heartbeat_path(name) == tmp_path / "heartbeats" / f"notifications.{name}"
        deadline = time.monotonic() + 4  # long enough for a file that stopped to age past it
        while time.monotonic() < deadline:  # nothing to do: only its waits beat
            assert heartbeat_fresh(name, IDLE_MAX_AGE), log.read_text()
            time.sleep(0.1)
        sent = time.time()
        worker.send_signal(signal.SIGTERM)
        worker.wait(10)
    finally:
        stop_process(worker)
    output = log.read_text()
    assert worker.returncode == 0, output
    assert logged_at(output, stopped) - sent < 1.0, output
    assert "Traceback" not in output
