from __future__ import annotations

import subprocess
import time
from pathlib import Path

import psutil

from devstack.postgres import _is_postgres, remove_stale_lock_files

# Kept, so that nothing reaps them during the test (a Popen reaps its child when collected).
_children: list[subprocess.Popen[bytes]] = []


def zombie() -> int:
    """A child that has exited and is not reaped: its pid still answers kill(pid, 0)."""
    child = subprocess.Popen(["true"])
    _children.append(child)
    process = psutil.Process(child.pid)
    deadline = time.monotonic() + 10
    while process.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.status() == psutil.STATUS_ZOMBIE
    return child.pid


def lock_files(pgdata: Path, pid: int, socket_pid: int) -> Path:
    pgdata.mkdir()
    (pgdata / "postmaster.pid").write_text(
        f"{pid}\n{pgdata}\n{int(time.time())}\n5432\n{pgdata}\n\n  1234  0\nready\n"
    )
    socket_lock = pgdata / ".s.PGSQL.5432.lock"
    socket_lock.write_text(f"{socket_pid}\n{pgdata}\n")
    return socket_lock


def test_a_zombie_server_s_lock_files_are_removed(tmp_path: Path) -> None:
    """A killed server left a zombie (an init that does not reap): both lock files go, or
    PostgreSQL refuses to start while the zombie's pid answers."""
    pid = zombie()
    assert not _is_postgres(psutil.Process(pid))
    socket_lock = lock_files(tmp_path / "pg", pid, pid)
    remove_stale_lock_files(tmp_path / "pg", pid)
    assert not (tmp_path / "pg" / "postmaster.pid").exists()
    assert not socket_lock.exists()


def test_a_socket_lock_of_another_server_is_kept(tmp_path: Path) -> None:
    pid = zombie()
    socket_lock = lock_files(tmp_path / "pg", pid, psutil.Process().pid)
    remove_stale_lock_files(tmp_path / "pg", pid)
    assert not (tmp_path / "pg" / "postmaster.pid").exists()
    assert socket_lock.exists()
