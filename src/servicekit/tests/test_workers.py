"""The worker loop (servicekit.workers): real worker processes stopped by real signals, a
real database away, heartbeats read by the probe command; backoff and stuck loops with real
threads. The process is the users service's outbox relay (these tests run under its
settings), idle on its LISTEN wait unless said otherwise."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connection

from servicekit.testing import current_database_url, free_port, logged_at, wait_until
from servicekit.workers import (
    HEARTBEAT_WRITE_SECONDS,
    WAIT_SLICE_SECONDS,
    Worker,
    heartbeat_fresh,
    heartbeat_path,
)

SRC = Path(__file__).resolve().parents[2]
RELAY = "outbox_relay"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
# How old an idle, healthy one-loop worker's file gets by design: written at most once a
# HEARTBEAT_WRITE_SECONDS, at the next beat after that (once a wait slice); plus half a
# second for a busy machine.
IDLE_MAX_AGE = HEARTBEAT_WRITE_SECONDS + WAIT_SLICE_SECONDS + 0.5


def _env(**extra: str) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:10]
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": current_database_url(),
            "NATS_STREAM": f"TEST_{suffix.upper()}",
            "NATS_SUBJECT_PREFIX": f"test{suffix}",
            "PYTHONPATH": str(SRC),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


class Process:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._handle = log.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "users_service", *args],
            env=env,
            stdout=self._handle,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10) -> float:
        """Send `signum`; the seconds it took to exit."""
        started = time.monotonic()
        self.popen.send_signal(signum)
        self.popen.wait(timeout)
        return time.monotonic() - started

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        self._handle.close()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.close()


@pytest.fixture
def heartbeats(settings: Any, tmp_path: Path) -> Path:
    """The heartbeat folder of this test, set for the test process as for its workers."""
    directory = tmp_path / "heartbeats"
    settings.WORKER_HEARTBEAT_DIR = str(directory)
    return directory


def _start(processes: list[Process], tmp_path: Path, args: list[str], **env: str) -> Process:
    process = Process(args, _env(**env), tmp_path / f"{args[0]}-{len(processes)}.log")
    processes.append(process)
    return process


def _worker_health(heartbeats: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = _env(WORKER_HEARTBEAT_DIR=str(heartbeats) if heartbeats else "")
    return subprocess.run(
        [sys.executable, "-m", "users_service", "worker_health", RELAY, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


# Signals ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_one_signal_stops_a_waiting_worker_within_a_second_and_it_exits_0(
    processes: list[Process], tmp_path: Path, heartbeats: Path, signum: int
) -> None:
    relay = _start(
        processes,
        tmp_path,
        [RELAY, "--poll-interval", "60"],
        WORKER_HEARTBEAT_DIR=str(heartbeats),
    )
    assert wait_until(lambda: heartbeat_fresh(RELAY, 2), 30), relay.output()
    time.sleep(1.0)  # well inside its 60 s wait for a NOTIFY
    sent = time.time()
    took = relay.stop(signum)
    assert relay.popen.returncode == 0, relay.output()
    # The loop ends within a wait slice; the process then closes its bus and exits, which on
    # a busy machine may take a moment more.
    assert logged_at(relay.output(), "outbox relay stopped") - sent < 1.0, relay.output()
    assert took < 5, relay.output()


# Failures --------------------------------------------------------------------------------


class Scripted(Worker):
    """Rounds that fail or succeed as told, remembering when each began."""

    name = "scripted"
    label = "scripted worker"
    idle_interval = 0.05
    backoff_initial = 0.1
    backoff_max = 0.4

    def __init__(self, outcomes: list[Exception | None]) -> None:
        self.outcomes = outcomes
        self.began: list[float] = []
        self.observed: list[object] = []

    def round(self) -> bool:
        self.began.append(time.monotonic())
        outcome = (
            self.outcomes[len(self.began) - 1] if len(self.began) <= len(self.outcomes) else None
        )
        if outcome is not None:
            raise outcome
        return False


def _run_in_thread(worker: Worker) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()

    def run() -> None:
        try:
            worker.run(stop)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, stop


def test_a_round_that_raises_keeps_the_loop_alive_and_backs_off_until_one_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bug = RuntimeError("a bug of the round")
    worker = Scripted([bug, bug, bug, bug, None, bug, None, None])
    caplog.set_level(logging.INFO)
    thread, stop = _run_in_thread(worker)
    try:
        assert wait_until(lambda: len(worker.began) >= 9, 10, interval=0.02)
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    gaps = [later - earlier for earlier, later in zip(worker.began, worker.began[1:], strict=False)]
    # After failures 1-4: 0.1, 0.2, 0.4, 0.4 (capped); after a success: the idle wait; the
    # next failure starts from 0.1 again.
    expected = [0.1, 0.2, 0.4, 0.4, 0.05, 0.1, 0.05, 0.05]
    for gap, wanted in zip(gaps, expected, strict=False):
        assert wanted * 0.9 <= gap < wanted + 0.25, (gaps, expected)
    failures = [r for r in caplog.records if "round failed" in r.getMessage()]
    assert [r.getMessage() for r in failures] == [
        "scripted worker: round failed; retry in 0.1s",
        "scripted worker: round failed; retry in 0.2s",
        "scripted worker: round failed; retry in 0.4s",
        "scripted worker: round failed; retry in 0.4s",
        "scripted worker: round failed; retry in 0.1s",
    ]
    assert all(r.exc_info and r.exc_info[1] is bug for r in failures)  # with its traceback
    assert "scripted worker: working again after 4 failed rounds" in caplog.messages


@pytest.mark.django_db(transaction=True)
def test_a_database_error_closes_the_connection_for_the_next_round(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Connected(Scripted):
        def round(self) -> bool:
            self.observed.append(connection.connection is not None)
            connection.ensure_connection()
            return super().round()

    worker = Connected([OperationalError("server closed the connection unexpectedly")])
    thread, stop = _run_in_thread(worker)
    try:
        assert wait_until(lambda: len(worker.began) >= 2, 10, interval=0.02)
    finally:
        stop.set()
        thread.join(5)
    assert worker.observed[:2] == [False, False]  # the second round had to connect again
    [warning] = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert warning.levelno == logging.WARNING
    assert warning.exc_info is None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_database_away_is_one_warning_line_a_round_and_never_ends_the_process(
    processes: list[Process], tmp_path: Path, heartbeats: Path
) -> None:
    nobody = f"postgres://turnstile@127.0.0.1:{free_port()}/nothing"
    relay = _start(
        processes,
        tmp_path,
        [RELAY, "--backoff-max", "0.5"],
        DATABASE_URL=nobody,
        WORKER_HEARTBEAT_DIR=str(heartbeats),
    )

    def warned(times: int) -> Callable[[], bool]:
        return lambda: relay.output().count("outbox relay: database unavailable") >= times

    assert wait_until(warned(5), 30), relay.output()
    assert relay.popen.poll() is None, relay.output()
    # Waiting out an outage is being alive: the probe must not restart it for that.
    assert heartbeat_fresh(RELAY, 2), relay.output()
    assert relay.stop() < 1.5
    assert relay.popen.returncode == 0, relay.output()
    output = relay.output()
    assert "Traceback" not in output
    lines = output.splitlines()
    assert all(TIMESTAMP.match(line) for line in lines), output  # no continuation lines
    warnings = [line for line in lines if "database unavailable" in line]
    assert all(" WARNING " in line and "; retry in " in line for line in warnings), output
    assert "retry in 0.2s" in warnings[0]
    assert "retry in 0.5s" in warnings[-1]


def test_a_step_fails_on_its_own_and_the_round_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    worker = Scripted([])

    def database_away() -> int:
        raise OperationalError("connection refused\n\tIs the server running?")

    def bug() -> int:
        raise ValueError("a bug of the step")

    results = [
        worker.step("expiring holds", database_away, 0),
        worker.step("refunding", bug, 0),
        worker.step("purging", lambda: 7, 0),
    ]
    assert results == [0, 0, 7]
    away, failed = caplog.records
    assert away.getMessage() == (
        "scripted worker: expiring holds: database unavailable "
        "(connection refused Is the server running?); next round"
    )
    assert away.levelno == logging.WARNING
    assert away.exc_info is None
    assert failed.getMessage() == "scripted worker: refunding failed; next round"
    assert failed.exc_info is not None


# Heartbeats ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_is_fresh_while_the_worker_waits_and_stale_after_it_stops(
    processes: list[Process], tmp_path: Path, heartbeats: Path
) -> None:
    relay = _start(
        processes,
        tmp_path,
        [RELAY, "--poll-interval", "60"],
        WORKER_HEARTBEAT_DIR=str(heartbeats),
    )
    assert wait_until(lambda: heartbeat_fresh(RELAY, IDLE_MAX_AGE), 30), relay.output()
    path = heartbeat_path(RELAY)
    assert path == heartbeats / "users.outbox_relay"
    # One round, then a 60 s wait for a NOTIFY: only the wait's beats keep it fresh.
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        assert heartbeat_fresh(RELAY, IDLE_MAX_AGE), relay.output()
        time.sleep(0.1)
    health = _worker_health(heartbeats, "--max-age", "2")
    assert health.returncode == 0, health.stderr
    assert "outbox_relay: last heartbeat" in health.stdout

    relay.stop()
    assert relay.popen.returncode == 0
    time.sleep(2.5)
    assert path.exists()
    assert not heartbeat_fresh(RELAY, 2)
    health = _worker_health(heartbeats, "--max-age", "2")
    assert health.returncode == 1
    assert "more than 2s" in health.stderr


@pytest.mark.slow
def test_worker_health_exits_1_without_a_heartbeat(tmp_path: Path) -> None:
    missing = _worker_health(tmp_path)
    assert missing.returncode == 1
    assert f"no heartbeat at {tmp_path / 'users.outbox_relay'}" in missing.stderr

    (tmp_path / "users.outbox_relay").touch()
    assert _worker_health(tmp_path).returncode == 0
    an_hour_ago = time.time() - 3600
    os.utime(tmp_path / "users.outbox_relay", (an_hour_ago, an_hour_ago))
    assert _worker_health(tmp_path).returncode == 1  # stale for the default 60 s
    assert _worker_health(tmp_path, "--max-age", "7200").returncode == 0

    off = _worker_health(None)
    assert off.returncode == 1
    assert "WORKER_HEARTBEAT_DIR is not set" in off.stderr


class Blocking(Worker):
    """A loop whose rounds block while `hold` is clear (a stuck round)."""

    name = "shared"
    idle_interval = 0.2

    def __init__(self, hold: threading.Event) -> None:
        self.hold = hold

    def round(self) -> bool:
        self.hold.wait()
        return False


def test_one_stuck_loop_of_a_process_makes_its_heartbeat_stale(heartbeats: Path) -> None:
    """As the consumers' threads share consume_events' heartbeat."""
    going = threading.Event()
    going.set()
    stuck = threading.Event()
    stuck.set()
    loops = [_run_in_thread(Blocking(going)), _run_in_thread(Blocking(stuck))]
    try:
        assert wait_until(lambda: heartbeat_fresh("shared", 1.5), 5)
        stuck.clear()
        assert wait_until(lambda: not heartbeat_fresh("shared", 1.5), 5)
        assert loops[0][0].is_alive()  # the other loop beats on, and does not hide it
        stuck.set()
        assert wait_until(lambda: heartbeat_fresh("shared", 1.5), 5)
    finally:
        stuck.set()
        for thread, stop in loops:
            stop.set()
            thread.join(5)
