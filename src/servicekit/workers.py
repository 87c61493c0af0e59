"""The loop every long-running command runs: how a worker goes round, waits for work, stops,
backs off after a failure and shows that it is alive. Subclass `Worker`, give it a `round`,
and run it with `worker.run(stop_on_signals())`.

- A round does some work and says whether more is waiting right away (busy): then the next
  round starts at once. Otherwise the worker waits up to `idle_interval` for work, in slices
  of at most half a second (`wait_for_work`: plain time, or a LISTEN for a NOTIFY).
- SIGTERM or SIGINT sets the stop event: the round in progress finishes, a wait ends within
  half a second, and the command returns (exit status 0). One signal is enough.
- A round that raises never ends the process: the worker waits `backoff_delay(failures)`
  and goes round again; a round that succeeds resets the count. The database away
  (`OperationalError`, `InterfaceError`) or an outage the worker names (the bus away) is one
  warning line, expected and said once a round; anything else is a bug, logged with its
  traceback, that must still not stop the work of everyone else. After any database error
  the Django connection is closed, so the next round starts on a fresh one.
- With `WORKER_HEARTBEAT_DIR` set (a setting, or the environment), each worker touches
  `<dir>/<service>.<command>` at every iteration and at least once a second while it
  waits or backs off. A loop that is stuck stops touching it: `heartbeat_fresh` and the
  `worker_health` command tell a probe (docs/operations/supervision.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import ClassVar, TypeVar

from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
)

from servicekit.bus import backoff_delay

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The database is away (down, restarting, a connection cut): no bug, and no message's fault.
DATABASE_AWAY: tuple[type[Exception], ...] = (OperationalError, InterfaceError)

# The longest a wait lasts before it looks at the stop event and beats again.
WAIT_SLICE_SECONDS = 0.5
# The heartbeat file is written at most this often.
HEARTBEAT_WRITE_SECONDS = 1.0


def stop_on_signals() -> threading.Event:
    """An event that SIGTERM and SIGINT set. Installs the handlers for the whole process, so
    call it from the main thread, once."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


class Worker:
    """A loop of rounds until the stop event is set. Subclasses give `round` and, where they
    have one, a `wait_for_work` that wakes early; the rest are hooks with defaults."""

    # The management command's name: the heartbeat file is named after it.
    name: str = "worker"
    # How the worker's log lines begin ("outbox relay", "consumer notifications").
    label: str = "worker"
    # Seconds to wait for work after a round that was not busy.
    idle_interval: float = 1.0
    # Backoff after failed rounds: initial, doubling, capped.
    backoff_initial: float = 0.5
    backoff_max: float = 10.0
    # Outages besides the database's, each with the words its warning line uses.
    outages: ClassVar[Mapping[type[Exception], str]] = {}

    def round(self) -> bool:
        """Do some work; whether more is waiting right away."""
        raise NotImplementedError

    def wait_for_work(self, stop: threading.Event, timeout: float) -> bool:
        """Wait at most `timeout` seconds (half a second or less) for a sign of work; whether
        one came. By default, plain time, cut short by `stop`."""
        stop.wait(timeout)
        return False

    def started(self) -> None:
        self.log.info("%s started", self.label)

    def stopped(self) -> None:
        self.log.info("%s stopped", self.label)

    def round_failed(self, exc: Exception, failures: int) -> None:
        """After a failed round has been logged, before the backoff: drop what the failure
        may have broken (a LISTEN connection, a subscription)."""

    @property
    def log(self) -> logging.Logger:
        """The logger of the module that defines the worker, so its lines keep their name."""
        return logging.getLogger(type(self).__module__)

    def is_outage(self, exc: BaseException) -> bool:
        return isinstance(exc, DATABASE_AWAY) or self._outage_words(exc) is not None

    def step(self, what: str, run: Callable[[], T], default: T) -> T:
        """`run()` on its own, inside a round of several steps: a failure is logged as a
        failed round is, and the round goes on with `default`."""
        try:
            return run()
        except Exception as exc:
            self._report(exc, step=what, then="next round")
            return default

    def run(self, stop: threading.Event) -> None:
        heartbeat = heartbeat_for(self.name)
        failures = 0
        self.started()
        try:
            while not stop.is_set():
                heartbeat.beat(self)
                try:
                    close_old_connections()
                    busy = self.round()
                    if failures:
                        self.log.info(
                            "%s: working again after %d failed rounds", self.label, failures
                        )
                        failures = 0
                    if not busy:
                        self._wait(stop, self.idle_interval, self.wait_for_work, heartbeat)
                except Exception as exc:
                    failures += 1
                    delay = backoff_delay(
                        failures, initial=self.backoff_initial, maximum=self.backoff_max
                    )
                    self._report(exc, step=None, then=f"retry in {delay:.1f}s")
                    self.round_failed(exc, failures)
                    self._wait(stop, delay, _sleep, heartbeat)
        finally:
            heartbeat.leave(self)
            self.stopped()
            with contextlib.suppress(DatabaseError):
                connection.close()

    def _wait(
        self,
        stop: threading.Event,
        seconds: float,
        wait: Callable[[threading.Event, float], bool],
        heartbeat: Heartbeat,
    ) -> None:
        deadline = time.monotonic() + seconds
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or wait(stop, min(remaining, WAIT_SLICE_SECONDS)):
                return
            heartbeat.beat(self)

    def _report(self, exc: Exception, *, step: str | None, then: str) -> None:
        if isinstance(exc, DatabaseError):
            with contextlib.suppress(DatabaseError):
                connection.close()
        where = f"{self.label}: {step}" if step else self.label
        if isinstance(exc, DATABASE_AWAY):
            words: str | None = "database unavailable"
        else:
            words = self._outage_words(exc)
        if words is not None:
            # One line: a multi-line driver message would read as several failures.
            self.log.warning("%s: %s (%s); %s", where, words, " ".join(str(exc).split()), then)
        else:
            failed = f"{where} failed" if step else f"{where}: round failed"
            self.log.error("%s; %s", failed, then, exc_info=exc)

    def _outage_words(self, exc: BaseException) -> str | None:
        for kind, words in self.outages.items():
            if isinstance(exc, kind):
                return words
        return None


def _sleep(stop: threading.Event, timeout: float) -> bool:
    stop.wait(timeout)
    return False


# Heartbeats -----------------------------------------------------------------------------


def heartbeat_path(name: str) -> Path | None:
    """Where the worker `name` (its command) of this service beats; None when heartbeats are
    off (`WORKER_HEARTBEAT_DIR` unset or empty)."""
    from django.conf import settings

    directory = getattr(settings, "WORKER_HEARTBEAT_DIR", None) if settings.configured else None
    if directory is None:
        directory = os.environ.get("WORKER_HEARTBEAT_DIR", "")
    if not directory:
        return None
    # Two services run commands of the same name (outbox_relay): one file each.
    service = str(getattr(settings, "SERVICE_NAME", "")) if settings.configured else ""
    return Path(directory) / (f"{service}.{name}" if service else name)


def heartbeat_age(name: str) -> float | None:
    """Seconds since the worker `name` last beat; None without a heartbeat file."""
    path = heartbeat_path(name)
    if path is None:
        return None
    try:
        return max(0.0, time.time() - path.stat().st_mtime)
    except FileNotFoundError:
        return None


def heartbeat_fresh(name: str, max_age: float) -> bool:
    """Whether the worker `name` beat within `max_age` seconds."""
    age = heartbeat_age(name)
    return age is not None and age <= max_age


class Heartbeat:
    """The heartbeat file of one command in this process. Several loops (the consumers'
    threads) may share it: each beats on its own, and the file's mtime is the oldest of
    their last beats, so one stuck loop makes it stale while the others go on."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._beats: dict[int, float] = {}
        self._written = 0.0
        self._broken = False
        self._lock = threading.Lock()

    def beat(self, loop: object) -> None:
        if self.path is None:
            return
        now = time.time()
        with self._lock:
            self._beats[id(loop)] = now
            if now - self._written < HEARTBEAT_WRITE_SECONDS:
                return
            self._written = now
            oldest = min(self._beats.values())
        self._write(self.path, oldest)

    def leave(self, loop: object) -> None:
        """The loop has stopped: it no longer holds the file back (nor keeps it fresh)."""
        with self._lock:
            self._beats.pop(id(loop), None)

    def _write(self, path: Path, when: float) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            os.utime(path, (when, when))
        except OSError as exc:
            if not self._broken:  # said once, not every second
                logger.warning("heartbeat %s cannot be written: %s", path, exc)
            self._broken = True
            return
        self._broken = False


_heartbeats: dict[str, Heartbeat] = {}
_heartbeats_lock = threading.Lock()


def heartbeat_for(name: str) -> Heartbeat:
    """This process's heartbeat of the worker `name` (one for all its loops); a heartbeat
    that writes nothing when heartbeats are off."""
    path = heartbeat_path(name)
    key = str(path) if path is not None else ""
    with _heartbeats_lock:
        if key not in _heartbeats:
            _heartbeats[key] = Heartbeat(path)
        return _heartbeats[key]
