"""From samples, CPU windows and the database to the figures: rates, percentiles, throughput
over time, correctness of the sale, and the targets each figure is held to."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from devstack.bench.cpu import CpuSnapshot, CpuWindow, cpu_window
from devstack.bench.load import Sample
from devstack.bench.stack import Stack

BUCKET_SECONDS = 0.5


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def rate(samples: list[Sample]) -> float:
    """Requests per second from the first start to the last end."""
    if len(samples) < 2:
        return 0.0
    span = (max(s.end_us for s in samples) - min(s.start_us for s in samples)) / 1e6
    return len(samples) / span if span > 0 else 0.0


def per_second_buckets(
    samples: Iterable[Sample], origin_us: float, bucket_s: float = BUCKET_SECONDS
) -> list[float]:
    """Requests that ended in each `bucket_s` from `origin_us` on, per second; a bucket
    with none is 0, so the list is the time axis itself (bucket k starts at k bucket_s)."""
    counts: list[int] = []
    for sample in samples:
        index = int((sample.end_us - origin_us) / 1e6 / bucket_s)
        if index < 0:
            continue
        if index >= len(counts):
            counts.extend([0] * (index + 1 - len(counts)))
        counts[index] += 1
    return [round(count / bucket_s, 1) for count in counts]


def ms(samples: Iterable[Sample]) -> list[float]:
    return [s.latency_us / 1000 for s in samples]


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3) if denominator else 0.0


@dataclass(frozen=True)
class Run:
    """A run of one kind of request, and the CPU samples taken meanwhile."""

    samples: list[Sample]
    snapshots: list[CpuSnapshot]

    def ok(self, status: int = 200) -> list[Sample]:
        return [s for s in self.samples if s.status == status]

    def cpu(self, status: int = 200) -> CpuWindow | None:
        return cpu_window(self.snapshots, self.ok(status))

    def figures(self, name: str) -> dict[str, Any]:
        """`<name>_rps`, p50/p99 and CPU per request of the 200 answers; other answers."""
        ok = self.ok()
        return {
            f"{name}_rps": round(rate(ok), 1),
            f"{name}_p50_ms": round(percentile(ms(ok), 50), 2),
            f"{name}_p99_ms": round(percentile(ms(ok), 99), 2),
            f"{name}_not_200": len(self.samples) - len(ok),
            f"{name}_5xx": sum(1 for s in self.samples if s.status >= 500),
            **cpu_figures(self.cpu(), name),
        }


def cpu_figures(window: CpuWindow | None, name: str) -> dict[str, Any]:
    """CPU per request in all and by kind, and the cores the stack and the load kept busy."""
    if window is None:
        return {f"cpu_ms_per_{name}": None}
    return {
        f"cpu_ms_per_{name}": round(window.ms_per_request, 3),
        f"cpu_ms_per_{name}_by_kind": {
            kind: round(value, 3) for kind, value in window.ms_per_request_by_kind().items()
        },
        f"cpu_cores_busy_{name}": round(window.stack_cores, 2),
        f"load_generator_cores_{name}": round(window.load_cores, 2),
        f"other_cores_{name}": round(window.other_cores, 2),
        f"iowait_cores_{name}": round(window.cores(window.machine_ms.get("iowait", 0.0)), 2),
        f"steal_cores_{name}": round(window.cores(window.machine_ms.get("steal", 0.0)), 2),
        f"cpu_window_seconds_{name}": round(window.seconds, 2),
    }


def correctness(stack: Stack, event_id: int, sale: list[Sample], total: int) -> dict[str, Any]:
    with psycopg.connect(stack.postgres.url("booking")) as conn:
        available, total_tickets = conn.execute(
            "SELECT available_tickets, total_tickets FROM events WHERE id = %s", [event_id]
        ).fetchone() or (None, None)
        rows = conn.execute(
            "SELECT status, count(*), coalesce(sum(tickets_booked), 0) FROM bookings "
            "WHERE event_id = %s GROUP BY status",
            [event_id],
        ).fetchall()
        # One batch of the fast path shares one `created_at`.
        bookings, batches, customers = conn.execute(
            "SELECT count(*), count(DISTINCT created_at), count(DISTINCT user_id) FROM bookings "
            "WHERE event_id = %s",
            [event_id],
        ).fetchone() or (0, 0, 0)
        most_held = conn.execute(
            "SELECT coalesce(max(held), 0) FROM (SELECT sum(tickets_booked) AS held "
            "FROM bookings WHERE event_id = %s AND status = 'pending' GROUP BY user_id) h",
            [event_id],
        ).fetchone()
    by_status = {status: (int(count), int(tickets)) for status, count, tickets in rows}
    held = by_status.get("pending", (0, 0))[1]
    sold = by_status.get("confirmed", (0, 0))[1]
    booked_rows = sum(count for status, (count, _) in by_status.items() if status != "canceled")
    tickets_sold = held + sold
    created = sum(1 for s in sale if s.status == 201)
    return {
        "tickets_sold": tickets_sold,
        "available_tickets": available,
        "oversold": max(0, tickets_sold - total),
        "conservation_holds": total_tickets == (available or 0) + held + sold,
        "errors_5xx": sum(1 for s in sale if s.status >= 500),
        "answers_201": created,
        "booking_rows": booked_rows,
        "every_201_has_its_row": created == booked_rows,
        "mean_batch_size": round(bookings / batches, 2) if batches else 0.0,
        "customers_who_booked": customers,
        "most_tickets_held_by_one_customer": int(most_held[0]) if most_held else 0,
        "other_statuses": sorted({s.status for s in sale} - {201, 409}),
    }


def table_stats(stack: Stack) -> dict[str, dict[str, int]]:
    """What the booking tables went through, from PostgreSQL's statistics: rows, dead rows
    left, updates (and how many were HOT) and autovacuum/autoanalyze rounds."""
    with psycopg.connect(stack.postgres.url("booking")) as conn:
        rows = conn.execute(
            "SELECT relname, n_live_tup, n_dead_tup, n_tup_upd, n_tup_hot_upd, "
            "autovacuum_count, autoanalyze_count FROM pg_stat_user_tables "
            "WHERE relname IN ('events', 'bookings', 'payments', 'outbox_messages') "
            "ORDER BY relname"
        ).fetchall()
    names = ("live", "dead", "updated", "hot_updated", "autovacuums", "autoanalyzes")
    return {row[0]: dict(zip(names, map(int, row[1:]), strict=True)) for row in rows}


def wal_stats(stack: Stack) -> tuple[int, int, int]:
    """The server's WAL so far (pg_stat_wal: records, full-page images, bytes): every
    database's, the relay's and the sweeper's included."""
    with psycopg.connect(stack.postgres.url("booking")) as conn:
        row = conn.execute("SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal").fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def wal_per_booking(
    before: tuple[int, int, int], after: tuple[int, int, int], bookings: int
) -> dict[str, float | None]:
    """The WAL the sale wrote (from its first request to the end of its sold-out run), per
    successful booking."""
    records, fpi, size = (b - a for a, b in zip(before, after, strict=True))
    if not bookings:
        return {
            "wal_records_per_booking": None,
            "wal_fpi_per_booking": None,
            "wal_bytes_per_booking": None,
        }
    return {
        "wal_records_per_booking": round(records / bookings, 2),
        "wal_fpi_per_booking": round(fpi / bookings, 3),
        "wal_bytes_per_booking": round(size / bookings),
    }


@dataclass(frozen=True)
class Target:
    """A bar one figure of a run is held to (issue 13's targets)."""

    key: str
    label: str
    bar: float | bool
    met: Callable[[Any, float | bool], bool]


def at_least(value: Any, bar: float | bool) -> bool:
    return value is not None and value >= bar


def at_most(value: Any, bar: float | bool) -> bool:
    return value is not None and value <= bar


def equal(value: Any, bar: float | bool) -> bool:
    return bool(value == bar)


TARGETS = (
    Target("ratio_vs_pgbench", "bookings/s ÷ pgbench tps ≥ 1.0", 1.0, at_least),
    Target("ratio_vs_noop", "bookings/s ÷ no-op req/s ≥ 0.8", 0.8, at_least),
    Target("p99_ms_success", "booking p99 ≤ 100 ms", 100.0, at_most),
    Target("ratio_cpu_booking_vs_noop", "CPU per booking ÷ per no-op ≤ 1.5", 1.5, at_most),
    Target("ratio_vs_baseline", "bookings/s ÷ the baseline's ≥ 0.9", 0.9, at_least),
    Target("ratio_events_list_vs_noop", "events list ÷ no-op ≥ 0.5", 0.5, at_least),
    Target("my_bookings_p99_ms", "bookings list of 1,000 p99 ≤ 50 ms", 50.0, at_most),
    Target("oversold", "oversold = 0", 0, equal),
    Target("errors_5xx_all_runs", "5xx answers = 0", 0, equal),
    Target("every_201_has_its_row", "every 201 has its row", True, equal),
)


def judge(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target whose figure the run has: its value, its bar and whether it is met."""
    return {
        target.key: {
            "value": results[target.key],
            "bar": target.bar,
            "met": target.met(results[target.key], target.bar),
        }
        for target in TARGETS
        if results.get(target.key) is not None
    }
