"""Whole-stack CPU time, from /proc, over the same window as the requests it is divided by.

A process's CPU time is `utime + stime` of /proc/<pid>/stat (every thread of it) plus
`cutime + cstime`, what its children used before it reaped them. Summed over every live
process of a tree, each CPU second is counted once: a child that exits moves its time into
its parent's `cutime`, so a PostgreSQL backend that ends in the middle of a window still
counts, and one alive across it counts by its own delta. Each process belongs to the kind
of its nearest ancestor among the roots (a web server and its workers, the postmaster and
its backends); what runs under the benchmark's own process (wrk, pgbench, itself) is
`LOAD_KIND`, reported beside the stack and never in its total.

A process that has ended but is not yet reaped (a zombie) reports only its main thread's
time: harmless for the stack, whose processes that end (PostgreSQL backends) have one
thread, but wrong for wrk's threads, which end with the run; so no window reaches past a
run's last answer.

A sampler thread reads every process every quarter of a second. A window is the widest
pair of samples inside a run's first and last request, and it is divided by the requests
that ended between those two samples: CPU and count cover the same time.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from devstack.bench.load import Sample

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
LOAD_KIND = "load generator"
OTHERS_KIND = "other processes"  # the machine's, neither the stack's nor the load's


def now_us() -> float:
    """CLOCK_MONOTONIC in µs: the clock load.lua stamps requests with."""
    return time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    ticks: int  # utime + stime + cutime + cstime, in clock ticks


def parse_stat(text: str) -> ProcStat:
    """A /proc/<pid>/stat line. The command name (field 2) is in parentheses and may hold
    spaces or parentheses itself, so the fields are counted from the last ')'."""
    head, _, tail = text.rpartition(")")
    fields = tail.split()
    # fields[0] is the state (field 3); ppid is field 4, utime to cstime fields 14-17.
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return ProcStat(
        pid=int(head.split("(", 1)[0]), ppid=int(fields[1]), ticks=utime + stime + cutime + cstime
    )


def read_processes(proc: Path = Path("/proc")) -> dict[int, ProcStat]:
    """Every process of the machine (one that ends while being read is skipped)."""
    processes = {}
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        stat = parse_stat(text)
        processes[stat.pid] = stat
    return processes


def kinds_of(processes: Mapping[int, ProcStat], roots: Mapping[int, str]) -> dict[int, str]:
    """The kind of every process under a root: its nearest ancestor's (or its own) among
    the roots. Processes under no root are left out."""
    found: dict[int, str | None] = {}

    def kind_of(pid: int) -> str | None:
        chain = []
        current = pid
        while current not in found and current not in roots:
            stat = processes.get(current)
            if stat is None or stat.ppid in (0, current):
                kind = None
                break
            chain.append(current)
            current = stat.ppid
        else:
            kind = roots[current] if current in roots else found[current]
        for member in chain:
            found[member] = kind
        return kind

    kinds = {pid: kind_of(pid) for pid in processes}
    return {pid: kind for pid, kind in kinds.items() if kind is not None}


def ticks_by_kind(processes: Mapping[int, ProcStat], roots: Mapping[int, str]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for pid, kind in kinds_of(processes, roots).items():
        totals[kind] = totals.get(kind, 0) + processes[pid].ticks
    return totals


def parse_machine(text: str) -> dict[str, int]:
    """The machine's line of /proc/stat (`cpu user nice system idle iowait irq softirq
    steal ...`, clock ticks summed over every core): time busy, waiting on the disk, and
    stolen by the hypervisor."""
    values = [int(value) for value in text.split()[1:9]]
    user, nice, system, _idle, iowait, irq, softirq, steal = values
    return {"busy": user + nice + system + irq + softirq, "iowait": iowait, "steal": steal}


def read_machine(proc: Path = Path("/proc")) -> dict[str, int]:
    return parse_machine(Path(proc, "stat").read_text().splitlines()[0])


@dataclass(frozen=True)
class CpuSnapshot:
    at_us: float
    ticks: dict[str, int]
    machine: dict[str, int] = field(default_factory=dict)


def snapshot(roots: Mapping[int, str], proc: Path = Path("/proc")) -> CpuSnapshot:
    before = now_us()
    processes = read_processes(proc)
    machine = read_machine(proc)
    return CpuSnapshot(
        at_us=(before + now_us()) / 2, ticks=ticks_by_kind(processes, roots), machine=machine
    )


class CpuSampler:
    """`with CpuSampler(roots) as sampler:` samples the roots' trees until the block ends
    (and once more then); `sampler.snapshots` holds them."""

    def __init__(self, roots: Mapping[int, str], interval: float = 0.25) -> None:
        self.roots = {**roots, os.getpid(): LOAD_KIND}
        self.interval = interval
        self.snapshots: list[CpuSnapshot] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            self.snapshots.append(snapshot(self.roots))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.snapshots.append(snapshot(self.roots))


@dataclass(frozen=True)
class CpuWindow:
    start_us: float
    end_us: float
    ms_by_kind: dict[str, float]
    requests: int  # requests that ended inside the window
    machine_ms: dict[str, float] = field(default_factory=dict)  # busy, iowait, steal

    @property
    def seconds(self) -> float:
        return (self.end_us - self.start_us) / 1e6

    @property
    def stack_ms(self) -> float:
        return sum(ms for kind, ms in self.ms_by_kind.items() if kind != LOAD_KIND)

    @property
    def ms_per_request(self) -> float:
        return self.stack_ms / self.requests if self.requests else 0.0

    def ms_per_request_by_kind(self) -> dict[str, float]:
        if not self.requests:
            return {}
        return {kind: ms / self.requests for kind, ms in sorted(self.ms_by_kind.items())}

    @property
    def stack_cores(self) -> float:
        """Cores the stack kept busy on average (2.0 is both of a 2-core machine)."""
        return self.stack_ms / 1000 / self.seconds if self.seconds else 0.0

    @property
    def load_cores(self) -> float:
        return self.cores(self.ms_by_kind.get(LOAD_KIND, 0.0))

    @property
    def other_cores(self) -> float:
        """Cores busy with neither the stack nor the load generator: the machine's others."""
        if "busy" not in self.machine_ms:
            return 0.0
        ours = sum(self.ms_by_kind.values())
        return max(0.0, self.cores(self.machine_ms["busy"] - ours))

    def cores(self, ms: float) -> float:
        return ms / 1000 / self.seconds if self.seconds else 0.0


def ms_between(first: CpuSnapshot, last: CpuSnapshot) -> dict[str, float]:
    kinds = set(first.ticks) | set(last.ticks)
    return {
        kind: (last.ticks.get(kind, 0) - first.ticks.get(kind, 0)) * 1000 / CLOCK_TICKS
        for kind in sorted(kinds)
    }


def cpu_window(snapshots: list[CpuSnapshot], requests: Iterable[Sample]) -> CpuWindow | None:
    """CPU over the widest pair of snapshots inside the requests' span, and the requests
    that ended between them; None when fewer than two snapshots fall inside."""
    chosen = list(requests)
    if not chosen:
        return None
    first_us = min(s.start_us for s in chosen)
    last_us = max(s.end_us for s in chosen)
    inside = [s for s in snapshots if first_us <= s.at_us <= last_us]
    if len(inside) < 2:
        return None
    start, end = inside[0], inside[-1]
    ended = sum(1 for s in chosen if start.at_us < s.end_us <= end.at_us)
    machine = {
        name: (end.machine[name] - start.machine.get(name, 0)) * 1000 / CLOCK_TICKS
        for name in end.machine
    }
    return CpuWindow(start.at_us, end.at_us, ms_between(start, end), ended, machine)


def cores_over_time(
    snapshots: list[CpuSnapshot], origin_us: float
) -> list[tuple[float, dict[str, float]]]:
    """Cores busy per kind (and the machine's other processes) between consecutive
    snapshots, at seconds since `origin_us`."""
    points = []
    for before, after in itertools.pairwise(snapshots):
        seconds = (after.at_us - before.at_us) / 1e6
        if seconds <= 0:
            continue
        by_kind = ms_between(before, after)
        cores = {kind: ms / 1000 / seconds for kind, ms in by_kind.items()}
        if "busy" in after.machine and "busy" in before.machine:
            busy = (after.machine["busy"] - before.machine["busy"]) * 1000 / CLOCK_TICKS
            cores[OTHERS_KIND] = max(0.0, busy - sum(by_kind.values())) / 1000 / seconds
        points.append(((after.at_us - origin_us) / 1e6, cores))
    return points
