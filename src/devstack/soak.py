"""`python3 dev.py soak [--minutes 5]`: growth over time, under a steady mixed load.

The whole system as the fault suite runs it (devstack.chaos.stack: users, two booking
instances with the relays and the sweeper, notifications with its consumer and dispatcher,
PostgreSQL, a NATS cluster, the mail sink and a webhook receiver), without faults, with
every retention cut to `--retention` seconds (60) and the workers pruning every
`--prune-interval` (10), so that a few minutes span several retention windows. The fault
suite's clients are the load: customers booking tickets and slots, paying (some cards
declined), changing and canceling, and leaving holds to expire (20 s holds); organizers
adding events and tickets, each with a webhook endpoint.

Every `--interval` seconds (10) it samples each growing table's rows and its size on disk
(`pg_total_relation_size`: table, indexes and TOAST) and the bookings made since the last
sample. At the end: a table, a chart and a JSON in the run's folder, and for each pruned
table whether it stayed flat once the window had passed (see `judge`). Bookings, payments
and notifications are the business record, shown but growing by design. Exit status 1 when
a pruned table grew.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import psycopg

from devstack.paths import DATA_DIR

DEFAULT_MINUTES = 5.0
DEFAULT_RETENTION = 60
DEFAULT_PRUNE_INTERVAL = 10
DEFAULT_SAMPLE_INTERVAL = 10.0
# Half the fault suite's clients: a load the notifications dispatcher keeps up with on 2
# cores (with 16, about 30 webhooks a second are due, it sends about 24, and its backlog
# grows).
DEFAULT_CUSTOMERS = 8
# Autovacuum looks at each table this often in the soak (PostgreSQL's default is a minute):
# a day's retention against a minute's naptime in production is, scaled to the soak's
# minute of retention, a few seconds.
AUTOVACUUM_NAPTIME = "5s"
# A pruned table is flat when, after the window, (1) its oldest row is never older than the
# retention plus two prune intervals (its pruning keeps up, whatever the load does), and
# (2) its size on disk over the last half of those samples stays within TOLERANCE (plus
# SLACK_BYTES, a few pages) of its most before: deleted space is reused, not added to. Its row
# count follows the load (a retention's worth), so it is shown, not judged.
TOLERANCE = 0.25
SLACK_BYTES = 256 * 1024
BACKLOG_SLACK_ROWS = 50


@dataclass(frozen=True)
class Table:
    database: str
    name: str
    pruned_by: str = ""  # the worker that prunes it; empty: grows by design
    # SQL: when the oldest of its rows that pruning concerns started to age (retention
    # counts from there); its rows still to be done, never pruned (a backlog that grows is
    # a worker falling behind the load, not a pruning that fails).
    aged_from: str = ""
    backlog: str = ""

    @property
    def label(self) -> str:
        return f"{self.database}.{self.name}"


TABLES = (
    Table("booking", "outbox_messages", "booking relay", "min(sent_at)", "sent_at IS NULL"),
    Table("booking", "idempotency_keys", "booking sweeper", "min(created_at)"),
    Table("users", "outbox_messages", "users relay", "min(sent_at)", "sent_at IS NULL"),
    Table("notifications", "inbox_processedmessage", "consumer", "min(processed_at)"),
    Table(
        "notifications",
        "notifications_emaildelivery",
        "dispatcher",
        "min(sent_at) FILTER (WHERE status = 'sent')",
        "status = 'pending'",
    ),
    Table(
        "notifications",
        "webhooks_webhookdelivery",
        "dispatcher",
        "min(delivered_at) FILTER (WHERE status = 'succeeded')",
        "status = 'pending'",
    ),
    Table(
        "notifications",
        "webhooks_webhookattempt",
        "dispatcher, with its delivery",
        "(SELECT min(d.delivered_at) FROM webhooks_webhookdelivery d "
        "JOIN webhooks_webhookattempt a ON a.delivery_id = d.id WHERE d.status = 'succeeded')",
    ),
    Table("booking", "bookings"),
    Table("booking", "payments"),
    Table("notifications", "notifications_notification"),
)
BOOKINGS = "booking.bookings"


@dataclass
class Sample:
    seconds: float  # since the load started
    rows: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    oldest: dict[str, float] = field(default_factory=dict)  # seconds; of the pruned tables
    backlog: dict[str, int] = field(default_factory=dict)  # of the tables that have one


@dataclass(frozen=True)
class Verdict:
    table: str
    oldest: float  # the oldest row seen after the window, seconds
    oldest_limit: float
    size_before: float  # the most bytes over the first half after the window
    size_peak: float  # the most over the last half
    backlog_grew: bool
    flat: bool | None  # None: not judged (too few samples)


def judge(samples: list[Sample], *, window: float, table: Table, oldest_limit: float) -> Verdict:
    """Whether `table` stayed flat after `window` (see TOLERANCE)."""
    after = [s for s in samples if s.seconds >= window]
    oldest = max((s.oldest.get(table.label, 0.0) for s in after), default=0.0)
    sizes = [float(s.bytes[table.label]) for s in after]
    grew = backlog_grew(samples, table)
    if len(after) < 4:
        return Verdict(table.label, oldest, oldest_limit, 0.0, 0.0, grew, None)
    half = len(sizes) // 2
    before, peak = max(sizes[:half]), max(sizes[half:])
    flat = oldest <= oldest_limit and peak <= before * (1 + TOLERANCE) + SLACK_BYTES
    return Verdict(table.label, oldest, oldest_limit, before, peak, grew, flat)


def backlog_grew(samples: list[Sample], table: Table) -> bool:
    """Whether the rows still to be done at the end are past a few dozen and half as many
    again as the most of the first half of the run: a worker falling behind the load."""
    if not table.backlog or not samples:
        return False
    waiting = [s.backlog.get(table.label, 0) for s in samples]
    return waiting[-1] > max(BACKLOG_SLACK_ROWS, 1.5 * max(waiting[: len(waiting) // 2 + 1]))


def booking_rates(samples: list[Sample]) -> list[float]:
    """Bookings made per second between each sample and the one before (the first: 0)."""
    rates = [0.0]
    for before, now in pairwise(samples):
        span = now.seconds - before.seconds
        made = now.rows[BOOKINGS] - before.rows[BOOKINGS]
        rates.append(made / span if span > 0 else 0.0)
    return rates


def rate_holds(samples: list[Sample], *, window: float) -> tuple[float, float, bool | None]:
    """The booking rate over the first and the last half after `window`, and whether the
    last is at least (1 - TOLERANCE) of the first."""
    after = [s for s in samples if s.seconds >= window]
    if len(after) < 3:
        return 0.0, 0.0, None
    middle = after[len(after) // 2]

    def rate(first: Sample, last: Sample) -> float:
        span = last.seconds - first.seconds
        return (last.rows[BOOKINGS] - first.rows[BOOKINGS]) / span if span > 0 else 0.0

    early, late = rate(after[0], middle), rate(middle, after[-1])
    return early, late, late >= early * (1 - TOLERANCE)


def _size(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def table_markdown(samples: list[Sample], *, window: float, oldest_limit: float) -> str:
    """One line per table: who prunes it, its rows after the window and at the end, its
    oldest row, its size, what it still has to do, and the verdict."""
    lines = [
        "| table | pruned by | rows after window / end | oldest row (s) "
        "| size: most in first half / last half / end | still to do at end | flat |",
        "|---|---|---|---|---|---|---|",
    ]
    after = next((s for s in samples if s.seconds >= window), samples[-1])
    last = samples[-1]
    for table in TABLES:
        rows = f"{after.rows[table.label]:,} / {last.rows[table.label]:,}"
        if not table.pruned_by:
            size = f"— / — / {_size(last.bytes[table.label])}"
            lines.append(f"| {table.label} | — | {rows} | — | {size} | — | grows by design |")
            continue
        verdict = judge(samples, window=window, table=table, oldest_limit=oldest_limit)
        if verdict.flat is None:
            flat = "too short to say"
        elif verdict.flat:
            flat = "yes"
        else:
            flat = "**no**" + (": its backlog grew" if verdict.backlog_grew else "")
        waiting = last.backlog.get(table.label)
        lines.append(
            f"| {table.label} | {table.pruned_by} | {rows} "
            f"| {verdict.oldest:.0f} (limit {oldest_limit:.0f}) "
            f"| {_size(verdict.size_before)} / {_size(verdict.size_peak)} "
            f"/ {_size(last.bytes[table.label])} "
            f"| {'—' if waiting is None else f'{waiting:,}'} | {flat} |"
        )
    early, late, holds = rate_holds(samples, window=window)
    held = "too short to say" if holds is None else "yes" if holds else "**no**"
    lines.append(
        f"| bookings/s | — | first half after window {early:.1f}, last half {late:.1f} "
        f"| | | | {held} |"
    )
    return "\n".join(lines) + "\n"


def verdicts(samples: list[Sample], *, window: float, oldest_limit: float) -> dict[str, Any]:
    tables = {
        table.label: asdict(judge(samples, window=window, table=table, oldest_limit=oldest_limit))
        for table in TABLES
        if table.pruned_by
    }
    early, late, holds = rate_holds(samples, window=window)
    return {
        "tables": tables,
        "booking_rate": {"first_half": early, "last_half": late, "holds": holds},
    }


def pruned_tables_flat(samples: list[Sample], *, window: float, oldest_limit: float) -> bool:
    return all(
        judge(samples, window=window, table=table, oldest_limit=oldest_limit).flat is not False
        for table in TABLES
        if table.pruned_by
    )


# Sampling --------------------------------------------------------------------------------


def sample(urls: dict[str, str], seconds: float) -> Sample:
    taken = Sample(seconds=round(seconds, 1))
    for database in sorted({table.database for table in TABLES}):
        with psycopg.connect(urls[database], autocommit=True) as conn:
            for table in (t for t in TABLES if t.database == database):
                backlog = f"count(*) FILTER (WHERE {table.backlog})" if table.backlog else "0"
                aged = table.aged_from or "now()"
                rows, size, waiting, oldest = conn.execute(
                    f"SELECT count(*), pg_total_relation_size('{table.name}'), {backlog}, "  # noqa: S608 (from TABLES)
                    f"coalesce(extract(epoch FROM now() - {aged}), 0) FROM {table.name}"
                ).fetchone() or (0, 0, 0, 0)
                taken.rows[table.label] = int(rows)
                taken.bytes[table.label] = int(size)
                if table.backlog:
                    taken.backlog[table.label] = int(waiting)
                if table.aged_from:
                    taken.oldest[table.label] = round(float(oldest), 1)
    return taken


def chart(samples: list[Sample], *, window: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = [s.seconds for s in samples]
    fig, (rows, size, rate) = plt.subplots(3, 1, figsize=(11, 10), sharex=True)
    for table in TABLES:
        style = "-" if table.pruned_by else ":"
        rows.plot(seconds, [s.rows[table.label] for s in samples], style, label=table.label)
        size.plot(seconds, [s.bytes[table.label] / 1024 for s in samples], style, label=table.label)
    rate.plot(seconds, booking_rates(samples), color="tab:green", label="bookings/s")
    for axis in (rows, size, rate):
        axis.axvline(window, color="grey", linestyle="--", label="window: judged from here")
        axis.grid(alpha=0.3)
    rows.set_ylabel("rows")
    size.set_ylabel("size on disk (KiB)")
    rate.set_ylabel("bookings/s")
    rate.set_xlabel("seconds since the load started")
    rows.legend(loc="upper left", fontsize=7, ncol=2)
    rate.legend(loc="upper left", fontsize=7)
    rows.set_title("Soak: pruned tables (solid) stay flat, the business record (dotted) grows")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# The run ---------------------------------------------------------------------------------


def judging_window(*, retention: float, prune_interval: float) -> float:
    """Seconds after the load starts from which a pruned table must be flat: the load's mix
    takes about a retention to settle (the first holds expire after 20 s, then payments,
    refunds and cancelations follow), and a table then takes a retention and an interval to
    hold exactly its window's rows."""
    return 2 * retention + prune_interval


def soak_settings(*, retention: int, prune_interval: int) -> dict[str, str]:
    return {
        "OUTBOX_SENT_RETENTION_SECONDS": str(retention),
        "IDEMPOTENCY_KEY_TTL_SECONDS": str(retention),
        "PROCESSED_MESSAGE_RETENTION_SECONDS": str(retention),
        "DELIVERY_RETENTION_SECONDS": str(retention),
        "PRUNE_INTERVAL_SECONDS": str(prune_interval),
    }


def run(args: argparse.Namespace, workdir: Path) -> int:
    from devstack.chaos.history import History
    from devstack.chaos.stack import ChaosStack
    from devstack.chaos.workload import Workload

    settings = soak_settings(retention=args.retention, prune_interval=args.prune_interval)
    window = judging_window(retention=args.retention, prune_interval=args.prune_interval)
    oldest_limit = args.retention + 2 * args.prune_interval
    samples: list[Sample] = []
    print(f"==> soak: {args.minutes:g} min, retention {args.retention} s; folder {workdir}")
    with ChaosStack(workdir, seed=args.seed, settings=settings) as stack:
        with psycopg.connect(stack.postgres.url("postgres"), autocommit=True) as admin:
            admin.execute(f"ALTER SYSTEM SET autovacuum_naptime = '{AUTOVACUUM_NAPTIME}'")
            admin.execute("SELECT pg_reload_conf()")
        urls = stack.topology.database_urls
        with History(workdir / "history.jsonl") as history:
            workload = Workload(stack.topology, history, seed=args.seed, customers=args.customers)
            workload.setup()
            started = time.monotonic()
            workload.start()
            try:
                for due in _every(args.interval, until=args.minutes * 60):
                    time.sleep(max(0.0, started + due - time.monotonic()))
                    samples.append(sample(urls, time.monotonic() - started))
                    _progress(samples[-1])
            finally:
                workload.stop()
    for folder in ("postgres", "nats"):  # the data is what the samples say; it goes
        shutil.rmtree(workdir / folder, ignore_errors=True)

    table = table_markdown(samples, window=window, oldest_limit=oldest_limit)
    flat = pruned_tables_flat(samples, window=window, oldest_limit=oldest_limit)
    results = {
        "minutes": args.minutes,
        "retention_seconds": args.retention,
        "prune_interval_seconds": args.prune_interval,
        "sample_interval_seconds": args.interval,
        "window_seconds": window,
        "tolerance": TOLERANCE,
        "customers": args.customers,
        "settings": settings,
        "autovacuum_naptime": AUTOVACUUM_NAPTIME,
        "pruned_tables_flat": flat,
        "oldest_limit_seconds": oldest_limit,
        **verdicts(samples, window=window, oldest_limit=oldest_limit),
        "samples": [asdict(s) for s in samples],
    }
    (workdir / "soak.json").write_text(json.dumps(results, indent=2) + "\n")
    (workdir / "soak.md").write_text(table)
    chart(samples, window=window, path=workdir / "soak.png")
    print()
    print(table)
    print(f"pruned tables flat after the window ({window:g} s): {'yes' if flat else 'NO'}")
    print(f"chart: {workdir / 'soak.png'}")
    print(workdir / "soak.json")
    return 0 if flat else 1


def _every(interval: float, *, until: float) -> list[float]:
    """The moments of the samples: 0, every `interval`, and `until` itself."""
    count = int(until // interval)
    moments = [n * interval for n in range(count + 1)]
    return moments if moments[-1] >= until else [*moments, until]


def _progress(taken: Sample) -> None:
    shown = ", ".join(
        f"{table.name} {taken.rows[table.label]}"
        for table in TABLES
        if table.pruned_by and table.database != "users"
    )
    print(f"  {taken.seconds:6.0f} s  bookings {taken.rows[BOOKINGS]}; {shown}", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dev.py soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=DEFAULT_MINUTES)
    parser.add_argument(
        "--retention", type=int, default=DEFAULT_RETENTION, help="seconds, every retention"
    )
    parser.add_argument(
        "--prune-interval",
        type=int,
        default=DEFAULT_PRUNE_INTERVAL,
        help="PRUNE_INTERVAL_SECONDS of the workers",
    )
    parser.add_argument(
        "--interval", type=float, default=DEFAULT_SAMPLE_INTERVAL, help="seconds between samples"
    )
    parser.add_argument("--customers", type=int, default=DEFAULT_CUSTOMERS, help="customer clients")
    parser.add_argument("--seed", type=int, default=1, help="the clients' choices")
    parser.add_argument(
        "--dir", type=Path, default=None, help="the run's folder (default .data/soak/<time>)"
    )
    args = parser.parse_args(argv)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return run(args, args.dir or DATA_DIR / "soak" / stamp)
