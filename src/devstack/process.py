"""Supervised child processes: prefixed output, restarted with backoff when they die.

A child that exits is started again after a delay that doubles from `first_delay` up to
`max_delay`, and starts from `first_delay` again once a run has lasted `stable_after`. A
child that exits `burst` times within `interval` is broken, not unlucky: the supervisor
gives up and says which child and what it last printed. (systemd's Restart=on-failure with
StartLimitBurst, and Kubernetes' CrashLoopBackOff, do the same in production: see
docs/operations/supervision.md.)

Children end with the supervisor even when it is killed with SIGKILL: on Linux each one asks
the kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG). That signal follows the
*thread* that forked the child, so children are started from the main thread only.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, NoReturn, TextIO

import psutil

COLORS = ["36", "33", "35", "32", "34", "31"]
TAIL_LINES = 15
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def end_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGTERM when this process dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGTERM))
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def popen_owned(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Popen for a child that must not outlive this process, in a session of its own.

    Its own session keeps a terminal's Ctrl-C away from it (the parent stops it in order),
    and lets the parent stop whatever it started in turn (gunicorn's workers) by group.
    """
    return subprocess.Popen(
        list(argv), start_new_session=True, preexec_fn=end_with_parent(), **kwargs
    )


def wait_gone(process: psutil.Process, timeout: float) -> bool:
    """Wait for a process that is not our child to end; False if it is still running.

    A zombie counts as ended: its parent may be an init that never reaps (in a container).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-returncode).name}"
        return f"signal {-returncode}"
    return f"exit code {returncode}"


class Child:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        color: str = "0",
        out: TextIO | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(os.environ if env is None else env)
        self.color = color
        self.out = out or sys.stdout
        self.process: subprocess.Popen[bytes] | None = None
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.starts = 0
        self.started_at = 0.0
        self._pump_thread: threading.Thread | None = None

    def start(self) -> Child:
        self.process = popen_owned(
            self.argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.starts += 1
        self.started_at = time.monotonic()
        assert self.process.stdout is not None
        self.tail = deque(maxlen=TAIL_LINES)  # this run's, not the one before
        self._pump_thread = threading.Thread(
            target=self._pump, args=(self.process.stdout, self.tail), daemon=True
        )
        self._pump_thread.start()
        return self

    def _pump(self, stream: IO[bytes], tail: deque[str]) -> None:
        tty = self.out.isatty()
        prefix = f"\033[{self.color}m{self.name:>14}\033[0m | " if tty else f"{self.name:>14} | "
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            tail.append(line.rstrip("\n"))
            self.out.write(prefix + line)
            self.out.flush()

    def drain(self, timeout: float = 1.0) -> None:
        """Wait a moment for the output of a process that ended to be read to its end."""
        if self._pump_thread is not None:
            self._pump_thread.join(timeout)

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def returncode(self) -> int | None:
        """How it ended, or None while it runs (or was never started)."""
        return None if self.process is None else self.process.poll()

    def ended(self) -> str | None:
        """How it ended, in words for the supervisor's log; None while it runs."""
        returncode = self.returncode()
        return None if returncode is None else describe_exit(returncode)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_group(self, signum: int) -> None:
        """Signal the child and everything it started (its session's process group)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signum)

    def terminate(self) -> None:
        if self.alive():
            self.signal_group(signal.SIGTERM)

    def wait(self, timeout: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.process.wait()


def stop_groups(processes: Iterable[subprocess.Popen[bytes]], timeout: float = 15.0) -> None:
    """SIGTERM each process's group (started with `start_new_session`), then wait; a group
    still there after `timeout` is killed."""
    stopping = list(processes)
    for process in stopping:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    for process in stopping:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def stop_all(children: Sequence[Child], timeout: float = 15.0) -> None:
    for child in children:
        child.terminate()
    for child in children:
        child.wait(timeout)


@dataclass(frozen=True)
class RestartPolicy:
    first_delay: float = 1.0
    max_delay: float = 30.0
    stable_after: float = 60.0  # a run this long resets the delay to first_delay
    burst: int = 5  # this many exits ...
    interval: float = 60.0  # ... within this many seconds, and the supervisor gives up


class GaveUp(Exception):  # noqa: N818  (it is the outcome, not an error in the supervisor)
    """A child kept dying; the message names it, how it ended and its last output."""

    def __init__(self, child: Child, message: str) -> None:
        super().__init__(message)
        self.child = child


@dataclass
class _Restart:
    delay: float
    due: float | None = None  # when the next start is due, while the child is down
    exits: deque[float] = field(default_factory=deque)  # monotonic times of recent exits


class Supervisor:
    """Keeps its children running: restarts one that dies, gives up on one that keeps dying."""

    def __init__(self, policy: RestartPolicy | None = None, out: TextIO | None = None) -> None:
        self.policy = policy or RestartPolicy()
        self.out = out or sys.stdout
        self.children: list[Child] = []
        self._restarts: dict[str, _Restart] = {}

    def start(self, child: Child) -> Child:
        self.children.append(child)
        self._restarts[child.name] = _Restart(self.policy.first_delay)
        return child.start()

    def log(self, message: str) -> None:
        red = "\033[1;31m%s\033[0m" if self.out.isatty() else "%s"
        self.out.write(red % f"!!! {message}" + "\n")
        self.out.flush()

    def poll(self) -> None:
        """Restart children that died and are due; raise GaveUp for one that keeps dying."""
        now = time.monotonic()
        for child in self.children:
            state = self._restarts[child.name]
            if state.due is not None:
                if now >= state.due:
                    state.due = None
                    child.start()
                    if child.ended() is None:  # else the next poll says how it failed
                        self.log(f"{child.name} restarted (pid {child.pid})")
                continue
            how = child.ended()
            if how is None:
                continue
            # Whatever it started (a server's workers) goes with it, so the next run can bind.
            child.signal_group(signal.SIGTERM)
            self._note_exit(child, state, how, now)

    def _note_exit(self, child: Child, state: _Restart, how: str, now: float) -> None:
        policy = self.policy
        state.exits.append(now)
        while state.exits and now - state.exits[0] > policy.interval:
            state.exits.popleft()
        if len(state.exits) >= policy.burst:
            child.drain()
            last = "\n".join(f"    {line}" for line in child.tail) or "    (no output)"
            raise GaveUp(
                child,
                f"{child.name} exited {len(state.exits)} times within {policy.interval:g}s, "
                f"the last time with {how}; giving up. Its last output:\n{last}",
            )
        if now - child.started_at >= policy.stable_after:
            state.delay = policy.first_delay
        state.due = now + state.delay
        who = child.name if child.pid is None else f"{child.name} (pid {child.pid})"
        self.log(
            f"{who} exited ({how}) after "
            f"{now - child.started_at:.1f}s; restarting in {state.delay:g}s"
        )
        state.delay = min(state.delay * 2, policy.max_delay)

    def run(self, poll_interval: float = 0.2) -> NoReturn:
        """Supervise until GaveUp or KeyboardInterrupt (see stop_on_signals) ends it."""
        while True:
            self.poll()
            time.sleep(poll_interval)

    def stop(self, timeout: float = 15.0) -> None:
        stop_all(self.children, timeout)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def stop_on_signals() -> None:
    """SIGTERM and SIGINT raise KeyboardInterrupt in the main thread, as Ctrl-C does.

    SIGINT stays ignored when this process was started ignoring it: a background job of a
    non-interactive shell is, and there SIGTERM is the way to stop it.
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, interrupt)


def ignore_stop_signals() -> None:
    """While stopping: a second signal must not cut the stopping short."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
