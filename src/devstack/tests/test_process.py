"""The supervisor the stack runs its servers and workers under, with real child processes."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from devstack.process import Child, GaveUp, RestartPolicy, Supervisor, wait_gone

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
# Starts a process of its own (as gunicorn starts its workers) and prints its pid.
SPAWNER = [
    sys.executable,
    "-c",
    "import subprocess, sys, time\n"
    "worker = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
    "print('worker', worker.pid, flush=True)\n"
    "time.sleep(60)\n",
]

# A supervisor process built as `dev.py up` builds its own: signals, supervise, stop all.
SUPERVISOR_SCRIPT = """
import json, sys
from devstack.process import Child, Supervisor, ignore_stop_signals, stop_on_signals

stop_on_signals()
supervisor = Supervisor()
try:
    for number, argv in enumerate(json.loads(sys.argv[1])):
        supervisor.start(Child(f"child{number}", argv))
    print("pids", json.dumps([child.pid for child in supervisor.children]), flush=True)
    supervisor.run()
except KeyboardInterrupt:
    print("stopping", flush=True)
finally:
    ignore_stop_signals()
    supervisor.stop(timeout=5)
"""


def gone(pid: int, timeout: float = 5.0) -> bool:
    try:
        return wait_gone(psutil.Process(pid), timeout)
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def out() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def supervisors() -> Iterator[list[Supervisor]]:
    made: list[Supervisor] = []
    yield made
    for supervisor in made:
        supervisor.stop(timeout=5)


def test_a_child_that_dies_is_restarted_with_doubling_delays(
    out: io.StringIO, supervisors: list[Supervisor]
) -> None:
    supervisor = Supervisor(RestartPolicy(first_delay=0.1, max_delay=0.4, burst=100), out=out)
    supervisors.append(supervisor)
    flaky_argv = [sys.executable, "-c", "import sys, time; time.sleep(0.2); sys.exit(3)"]
    flaky = supervisor.start(Child("flaky", flaky_argv, out=out))
    steady = supervisor.start(Child("steady", SLEEPER, out=out))
    pids = {flaky.pid}

    deadline = time.monotonic() + 15
    while flaky.starts < 5 and time.monotonic() < deadline:
        supervisor.poll()
        pids.add(flaky.pid)
        time.sleep(0.02)

    assert flaky.starts == 5
    assert len(pids - {None}) == 5  # a new process each time
    log = out.getvalue()
    assert re.search(r"flaky \(pid \d+\) exited \(exit code 3\) after 0\.\ds", log)
    delays = re.findall(r"flaky .* restarting in ([0-9.]+)s", log)
    assert delays == ["0.1", "0.2", "0.4", "0.4"]  # doubling, up to max_delay
    assert steady.starts == 1 and steady.alive()  # the others are left alone


def test_the_delay_starts_over_after_a_run_that_lasted(
    out: io.StringIO, supervisors: list[Supervisor]
) -> None:
    policy = RestartPolicy(first_delay=0.1, stable_after=0.3, burst=100)
    supervisor = Supervisor(policy, out=out)
    supervisors.append(supervisor)
    argv = [sys.executable, "-c", "import time; time.sleep(0.4)"]
    child = supervisor.start(Child("slow-crash", argv, out=out))

    deadline = time.monotonic() + 15
    while child.starts < 4 and time.monotonic() < deadline:
        supervisor.poll()
        time.sleep(0.02)

    assert re.findall(r"restarting in ([0-9.]+)s", out.getvalue()) == ["0.1", "0.1", "0.1"]


@pytest.mark.timeout(30)
def test_a_child_that_keeps_dying_at_start_makes_the_supervisor_give_up(
    out: io.StringIO, supervisors: list[Supervisor]
) -> None:
    supervisor = Supervisor(RestartPolicy(first_delay=0.05, burst=3, interval=30), out=out)
    supervisors.append(supervisor)
    argv = [
        sys.executable,
        "-c",
        "import sys; print('no such queue: orders', flush=True); sys.exit(2)",
    ]
    broken = supervisor.start(Child("broken", argv, out=out))
    steady = supervisor.start(Child("steady", SLEEPER, out=out))

    with pytest.raises(GaveUp) as gave_up:
        supervisor.run(poll_interval=0.02)  # runs on until it gives up

    assert gave_up.value.child is broken
    message = str(gave_up.value)
    assert message.startswith("broken exited 3 times within 30s, the last time with exit code 2")
    assert "    no such queue: orders" in message  # what it said before dying
    assert broken.starts == 3 and steady.starts == 1


def start_supervisor_process(
    children: list[list[str]], workers: int = 0
) -> tuple[subprocess.Popen[str], list[int]]:
    """A supervisor process, and the pids of its children and of the workers they started."""
    process = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR_SCRIPT, json.dumps(children)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    pids: list[int] = []
    while len(pids) < len(children) + workers:
        line = process.stdout.readline()
        assert line, "the supervisor ended early"
        if line.startswith("pids "):
            pids += json.loads(line.removeprefix("pids "))
        elif "| worker " in line:
            pids.append(int(line.split()[-1]))
    assert all(not gone(pid, timeout=0) for pid in pids)
    return process, pids


@pytest.mark.timeout(60)
def test_sigterm_stops_the_supervisor_and_everything_it_started() -> None:
    supervisor, pids = start_supervisor_process([SLEEPER, SPAWNER], workers=1)

    supervisor.send_signal(signal.SIGTERM)

    output, _ = supervisor.communicate(timeout=20)
    assert supervisor.returncode == 0
    assert "stopping" in output
    assert [pid for pid in pids if not gone(pid)] == []  # the spawner's worker too


@pytest.mark.timeout(60)
def test_children_end_when_the_supervisor_is_killed() -> None:
    supervisor, pids = start_supervisor_process([SLEEPER, SLEEPER])
    children = pids[:2]

    os.kill(supervisor.pid, signal.SIGKILL)
    supervisor.wait()

    assert [pid for pid in children if not gone(pid)] == []
