"""`python3 dev.py chaos [--seconds N] [--seed S ...]`: the fault suite, and its short run in
`dev.py test`.

For each seed: a fresh ChaosStack in its own folder, the workload set up, then the workload
and the nemesis run together for `--seconds`; the nemesis heals everything, the workload
stops (requests in flight end as unknown at worst), and the checker waits for the system to
heal and judges the history. The folder keeps `history.jsonl`, `verdict.json`, every
process's log, the mailbox and the webhook log. Exit status 0 only when every seed passed.
The same seed replays the same fault schedule and the same clients' choices (what the
system answers, and so what the clients do next, still depends on timing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.chaos.checker import Verdict, check
from devstack.chaos.history import History
from devstack.chaos.nemesis import Nemesis, plan
from devstack.chaos.stack import ChaosStack, StackError
from devstack.chaos.workload import SetupError, Workload
from devstack.paths import DATA_DIR

# `dev.py test` runs these seeds, each this long (TURNSTILE_CHAOS_SECONDS overrides).
CI_SEEDS = (20261202, 7)
CI_SECONDS = 45
HEAL_TIMEOUT = 180.0
CUSTOMERS = 16


@dataclass
class RunResult:
    seed: int
    workdir: Path
    verdict: Verdict | None = None
    error: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.error and self.verdict is not None and self.verdict.ok


def run_seed(*, seed: int, seconds: float, workdir: Path, customers: int = CUSTOMERS) -> RunResult:
    result = RunResult(seed=seed, workdir=workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    history_path = workdir / "history.jsonl"
    started = time.monotonic()
    print(f"==> chaos seed {seed}: {seconds:g} s of faults; folder {workdir}", flush=True)
    try:
        with ChaosStack(workdir, seed=seed) as stack:
            result.timings["stack start"] = time.monotonic() - started
            topology = stack.topology
            with History(history_path) as history:
                workload = Workload(topology, history, seed=seed, customers=customers)
                workload.setup()
                schedule = plan(seed, seconds, stack)
                nemesis = Nemesis(stack, history)
                stop = threading.Event()
                faults = threading.Thread(
                    target=nemesis.run, args=(schedule, stop), name="nemesis", daemon=True
                )
                workload.start()
                faults.start()
                faults_started = time.monotonic()
                stop.wait(seconds)
                stop.set()
                faults.join(60)
                nemesis.heal()
                workload.stop()
                result.timings["faults"] = time.monotonic() - faults_started
                healing = time.monotonic()
                stack.wait_healthy(HEAL_TIMEOUT)
                result.timings["processes healthy"] = time.monotonic() - healing
            result.verdict = check(topology, history_path, heal_timeout=HEAL_TIMEOUT)
            result.timings["checked"] = time.monotonic() - healing
    except (StackError, SetupError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    _write_verdict(result)
    return result


def _write_verdict(result: RunResult) -> None:
    body: dict[str, Any] = {
        "seed": result.seed,
        "ok": result.ok,
        "error": result.error,
        "timings": {name: round(value, 1) for name, value in result.timings.items()},
    }
    if result.verdict is not None:
        body["violations"] = result.verdict.violations
        body["stats"] = result.verdict.stats
    (result.workdir / "verdict.json").write_text(json.dumps(body, indent=2, default=str) + "\n")


def report(result: RunResult) -> str:
    lines = [f"--- seed {result.seed}: {'PASS' if result.ok else 'FAIL'} ({result.workdir})"]
    if result.verdict is not None:
        lines.append(result.verdict.table())
    if result.error:
        lines.append(f"the run could not finish: {result.error}")
    lines.append(
        "timings: " + ", ".join(f"{name} {value:.0f} s" for name, value in result.timings.items())
    )
    return "\n".join(lines)


def run_seeds(*, seeds: list[int], seconds: float, root: Path, customers: int) -> list[RunResult]:
    results = []
    for seed in seeds:
        result = run_seed(
            seed=seed, seconds=seconds, workdir=root / f"seed-{seed}", customers=customers
        )
        print(report(result), flush=True)
        results.append(result)
    return results


def run_in_test(workdir: Path) -> Counter[str]:
    """The short fault suite of `dev.py test`: fixed seeds, a few minutes in all. Each seed
    counts as one test; a failing seed's folder is kept under .data/chaos/ for reading."""
    seconds = float(os.environ.get("TURNSTILE_CHAOS_SECONDS", CI_SECONDS))
    print(f"\n==> chaos: seeds {list(CI_SEEDS)}, {seconds:g} s of faults each", flush=True)
    counts: Counter[str] = Counter()
    for result in run_seeds(
        seeds=list(CI_SEEDS), seconds=seconds, root=workdir / "chaos", customers=CUSTOMERS
    ):
        if result.ok:
            counts["passed"] += 1
            continue
        counts["failed"] += 1
        kept = DATA_DIR / "chaos" / f"ci-seed-{result.seed}-{_stamp()}"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(result.workdir, kept, ignore=shutil.ignore_patterns("postgres", "nats"))
        print(f"  kept the failing run's history, verdict and logs in {kept}", flush=True)
    return counts


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dev.py chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="of faults (default 600)")
    parser.add_argument(
        "--seed", type=int, nargs="+", default=None, help="one or more seeds (default: the time)"
    )
    parser.add_argument("--customers", type=int, default=CUSTOMERS, help="customer clients")
    parser.add_argument(
        "--dir", type=Path, default=None, help="where runs are kept (default .data/chaos/<time>)"
    )
    args = parser.parse_args(argv)
    seeds = args.seed or [int(time.time())]
    root = args.dir or DATA_DIR / "chaos" / _stamp()
    results = run_seeds(seeds=seeds, seconds=args.seconds, root=root, customers=args.customers)
    print()
    for result in results:
        verdict = "PASS" if result.ok else "FAIL"
        print(f"seed {result.seed}: {verdict}  (replay: python3 dev.py chaos --seed {result.seed})")
    return 0 if all(result.ok for result in results) else 1
