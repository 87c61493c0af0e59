"""The fault suite's stack and nemesis: the schedule replays from its seed, and on a real
stack the faults happen (new pids, a cluster node away, the database gone) and heal."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nats
import psutil
import pytest

from devstack.chaos.history import History, load
from devstack.chaos.nemesis import (
    KILL,
    KILL_WORKER,
    NATS_KILL,
    NATS_PAUSE,
    PAUSE,
    PG_TERMINATE,
    POSTGRES_STOP,
    WEBHOOK_DOWN,
    Fault,
    Nemesis,
    Targets,
    plan,
)
from devstack.chaos.receiver import write_control
from devstack.chaos.stack import ChaosStack
from devstack.paths import free_port

TARGETS = Targets(
    servers=("users", "booking-1", "booking-2", "notifications"),
    booking=("booking-1", "booking-2"),
    workers=(
        "users-relay",
        "booking-relay",
        "booking-sweeper",
        "notifications-consumer",
        "notifications-dispatcher",
    ),
    pausable=("booking-1", "booking-2", "booking-relay", "notifications-consumer"),
)


def test_a_plan_replays_from_its_seed_and_differs_across_seeds() -> None:
    first = plan(7, 300, TARGETS)
    assert first == plan(7, 300, TARGETS)
    assert first != plan(8, 300, TARGETS)
    assert len(first) > 40  # a fault every few seconds
    assert {fault.kind for fault in first} >= {KILL, KILL_WORKER, PAUSE, PG_TERMINATE, NATS_KILL}


@pytest.mark.parametrize("seed", range(5))
def test_a_plan_keeps_the_system_able_to_recover(seed: int) -> None:
    faults = plan(seed, 600, TARGETS)
    assert all(fault.at > 0 and fault.until <= 600 for fault in faults)
    for group in ({POSTGRES_STOP, PG_TERMINATE}, {NATS_KILL, NATS_PAUSE}):
        lasting = sorted((f.at, f.until) for f in faults if f.kind in group)
        for (_start, end), (next_start, _end) in itertools.pairwise(lasting):
            assert end <= next_start  # one database fault, one NATS node away, at a time
    pauses = [fault for fault in faults if fault.kind == PAUSE]
    assert pauses and all(fault.duration > TARGETS.ack_wait for fault in pauses)


def _post(url: str, body: bytes = b"{}", timeout: float = 10.0) -> int:
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_webhook_receiver_logs_what_it_accepts_and_obeys_its_switch(tmp_path: Path) -> None:
    port, log, control = free_port(), tmp_path / "hooks.jsonl", tmp_path / "control"
    receiver = subprocess.Popen(
        [sys.executable, "-m", "devstack.chaos.receiver", "--port", str(port),
         "--log", str(log), "--control", str(control)],
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/hook"
        deadline = time.monotonic() + 10
        while True:
            try:
                assert _post(url, b'{"n": 1}') == 204
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        write_control(control, "down")
        assert _post(url, b'{"n": 2}') == 503
        write_control(control, "slow:1.5")
        started = time.monotonic()
        assert _post(url, b'{"n": 3}') == 204
        assert time.monotonic() - started >= 1.5
        write_control(control, "up")
        entries = [json.loads(line) for line in log.read_text().splitlines()]
        assert [entry["body"] for entry in entries] == [{"n": 1}, {"n": 3}]
        assert entries[0]["headers"]["content-type"] == "application/json"
    finally:
        receiver.terminate()
        receiver.wait(10)


@pytest.fixture(scope="module")
def stack() -> Iterator[ChaosStack]:
    # Not under pytest's temporary folder: every pytest session started meanwhile (there may be
    # others on the machine) makes its parent private again, and PostgreSQL, running as a
    # system user of its own when the tests run as root, could no longer reach its data.
    base = os.environ.get("TURNSTILE_TEST_WORKDIR") or tempfile.gettempdir()
    workdir = Path(tempfile.mkdtemp(prefix="chaos-stack-", dir=base))
    try:
        with ChaosStack(workdir, seed=1) as running:
            yield running
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _stream_replicas(urls: list[str]) -> int:
    client = await nats.connect(servers=urls, connect_timeout=2)
    try:
        info = await client.jetstream().stream_info("TURNSTILE")
        return int(info.config.num_replicas or 0)
    finally:
        await client.close()


def _stopped(pid: int | None) -> bool:
    try:
        return pid is not None and psutil.Process(pid).status() == psutil.STATUS_STOPPED
    except psutil.NoSuchProcess:
        return False


def test_faults_on_a_real_stack_happen_and_heal(stack: ChaosStack, tmp_path: Path) -> None:
    assert asyncio.run(_stream_replicas(stack.nats.urls)) == 3
    booking_pid = stack.pid("booking-1")
    workers = stack.worker_pids("booking-2")
    assert len(workers) == 2
    schedule = [
        Fault(0.0, KILL, "booking-1"),
        Fault(0.2, KILL_WORKER, "booking-2", params={"worker": 0}),
        Fault(0.4, PG_TERMINATE, "postgres", params={"fraction": 1.0, "seed": 1}),
        Fault(0.5, PAUSE, "booking-relay", 300.0),  # still paused when the run is stopped
        Fault(1.0, POSTGRES_STOP, "postgres", 3.0),
        Fault(5.5, NATS_KILL, "nats-1", 3.0, {"node": 1}),
        Fault(6.0, WEBHOOK_DOWN, "webhook", 300.0),
    ]
    history_path = tmp_path / "history.jsonl"
    stop = threading.Event()
    with History(history_path) as history:
        nemesis = Nemesis(stack, history)
        thread = threading.Thread(target=nemesis.run, args=(schedule, stop))
        thread.start()
        time.sleep(2.0)
        assert not stack.postgres_running()
        assert _stopped(stack.pid("booking-relay"))
        time.sleep(5.0)
        assert not stack.nats.nodes[1].running()
        assert _post(stack.topology.webhook_url) == 503
        time.sleep(3.0)
        stop.set()
        thread.join(60)
        assert not thread.is_alive()
        assert nemesis.heal() == []  # again: nothing left to undo, nothing fails
    assert stack.wait_healthy(60) < 60
    assert stack.pid("booking-1") != booking_pid  # restarted by the supervisor
    assert set(stack.worker_pids("booking-2")) != set(workers)  # restarted by gunicorn
    assert not _stopped(stack.pid("booking-relay"))
    assert all(node.running() for node in stack.nats.nodes)
    assert _post(stack.topology.webhook_url) == 204
    assert asyncio.run(_stream_replicas(stack.nats.urls)) == 3

    entries = [entry for entry in load(history_path) if entry["process"] == "nemesis"]
    phases = {(entry["f"], entry["value"]["phase"]) for entry in entries}
    assert {(fault.kind, phase) for fault in schedule for phase in ("start", "stop")} <= phases
    assert not [entry for entry in entries if "error" in entry["value"]]
    healed = {entry["f"] for entry in entries if entry["value"].get("healed")}
    assert healed == {PAUSE, WEBHOOK_DOWN}  # cut short by the stop, undone by heal()
    terminated = next(entry for entry in entries if entry["f"] == PG_TERMINATE)
    assert terminated["value"]["terminated"] == terminated["value"]["connections"] > 0


def test_after_the_faults_an_event_still_goes_through_the_cluster_to_mail(
    stack: ChaosStack,
) -> None:
    """A registration's welcome mail crosses the outbox, the relay, NATS and the consumer."""
    email = f"after-faults-{time.time_ns()}@turnstile.test"
    body = json.dumps({"name": "After Faults", "email": email, "password": "Xq7-long-enough-pw!"})
    assert _post(f"{stack.topology.users_url}/api/users/register", body.encode()) == 201
    deadline = time.monotonic() + 60
    while not any(
        email in path.read_text(errors="replace") for path in stack.mail_dir.glob("*.eml")
    ):
        assert time.monotonic() < deadline, "no welcome mail within 60 s"
        time.sleep(0.5)
