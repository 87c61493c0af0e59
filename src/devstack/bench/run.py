"""`dev.py bench`: the run, from the options to the files it writes (see the package's
docstring for what it measures)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from devstack.bench import seed
from devstack.bench.cpu import CpuSampler, CpuSnapshot, now_us
from devstack.bench.load import Sample, ensure_wrk, run_pgbench, run_wrk
from devstack.bench.measures import (
    BUCKET_SECONDS,
    Run,
    correctness,
    cpu_figures,
    judge,
    ms,
    per_second_buckets,
    percentile,
    rate,
    ratio,
    table_stats,
    wal_per_booking,
    wal_stats,
)
from devstack.bench.report import chart, markdown
from devstack.bench.stack import Stack, bench_stack, http_json, log
from devstack.paths import ROOT

# The booking service's default BOOKING_MAX_HELD_TICKETS (its BOOKING_MAX_TICKETS).
DEFAULT_HOLD_LIMIT = 10
SALE_TIMEOUT_SECONDS = 600


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="dev.py bench", description="the flash-sale benchmark (docs/performance/benchmark.md)"
    )
    parser.add_argument("--tickets", type=int, default=50_000, help="tickets of the sale")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--seconds", type=int, default=10, help="pgbench, no-op and list runs (each)"
    )
    parser.add_argument(
        "--list-connections",
        type=int,
        default=8,
        help="connections of the customer's bookings list run (one customer's token)",
    )
    parser.add_argument("--soldout-seconds", type=float, default=5.0)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="server workers per instance")
    parser.add_argument("--threads", type=int, default=16, help="threads per worker")
    parser.add_argument("--server", choices=["gunicorn", "granian"], default="granian")
    parser.add_argument(
        "--preload",
        type=int,
        default=0,
        metavar="N",
        help="store N bookings (over 100,000 past events, with outbox rows and payments) "
        "before measuring",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="results.json of an earlier run (say, without --preload): report bookings/s "
        "against its figure",
    )
    parser.add_argument(
        "--regular-path",
        action="store_true",
        help="turn the batched booking path off (BOOKING_FAST_PATH=false) to compare",
    )
    parser.add_argument(
        "--no-relay",
        action="store_true",
        help="leave the outbox relay off (messages wait in the outbox; shows what it costs)",
    )
    parser.add_argument(
        "--hold-limit",
        type=int,
        help=f"BOOKING_MAX_HELD_TICKETS of the sale (default {DEFAULT_HOLD_LIMIT}, the service's)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    return parser.parse_args(argv)


@dataclass(frozen=True)
class Prepared:
    bases: list[str]
    customers: int
    tokens_file: Path
    collector_file: Path
    warmup_id: int
    event_id: int
    preloaded: int
    preload_seconds: float


def prepare(stack: Stack, args: argparse.Namespace, customers: int) -> Prepared:
    """Databases seeded, the booking instances, the relay and the sweeper running, the
    warm-up and sale events created."""
    log("migrating")
    stack.manage("users_service", "users", "migrate", "--noinput")
    stack.manage("booking_service", "booking", "migrate", "--noinput")
    users = stack.serve("users_service", "users", workers=2, threads=1)
    stack.env["JWT_JWKS_URL"] = f"{users}/.well-known/jwks.json"
    log(f"registering 1 organizer and minting {customers:,} customers (and 1 with bookings)")
    organizer_token = seed.register_organizer(users)
    tokens = seed.mint_customers(stack, customers + 1, stack.workdir / "minted.txt")
    tokens_file = stack.workdir / "tokens.txt"
    tokens_file.write_text("\n".join(tokens[:-1]) + "\n")
    collector_file = stack.workdir / "collector.txt"
    collector_file.write_text(tokens[-1] + "\n")
    organizer_id = http_json("GET", f"{users}/api/users/me", token=organizer_token)["id"]

    log(f"seeding {seed.LISTING_EVENTS:,} events and {seed.COLLECTOR_BOOKINGS:,} bookings")
    listing = seed.seed_listing_events(stack, organizer_id)
    seed.seed_collector(stack, seed.token_subject(tokens[-1]), listing)
    preloaded, preload_started = 0, time.monotonic()
    if args.preload:
        log(f"preloading {args.preload:,} bookings over {seed.PRELOAD_EVENTS:,} past events")
        preloaded = seed.preload(stack, args.preload)
    seed.settle(stack)
    preload_seconds = time.monotonic() - preload_started
    if args.preload:
        log(f"    {preloaded:,} bookings stored and settled in {preload_seconds:.0f} s")

    bases = [
        stack.serve("booking_service", "booking", workers=args.workers, threads=args.threads,
                    server=args.server)
        for _ in range(args.instances)
    ]  # fmt: skip
    booking_env = stack.service_env("booking_service", "booking")
    if not args.no_relay:
        stack.spawn([sys.executable, "-m", "booking_service", "outbox_relay"], booking_env,
                    "booking-relay", kind="relay")  # fmt: skip
    stack.spawn([sys.executable, "-m", "booking_service", "release_expired_holds", "--loop"],
                booking_env, "booking-sweeper", kind="sweeper")  # fmt: skip
    sale_day = (datetime.now(UTC) + timedelta(days=400)).date().isoformat()

    def create_event(name: str, tickets: int) -> int:
        created = http_json(
            "POST",
            f"{bases[0]}/api/events/",
            {"name": name, "description": "", "date": sale_day, "time": "20:00:00",
             "location": "Arena", "total_tickets": tickets, "price_per_ticket": "50.00"},
            token=organizer_token,
        )  # fmt: skip
        return int(created["id"])

    return Prepared(
        bases=bases,
        customers=customers,
        tokens_file=tokens_file,
        collector_file=collector_file,
        warmup_id=create_event("Warm-up", 1_000_000),
        event_id=create_event("The Flash Sale", args.tickets),
        preloaded=preloaded,
        preload_seconds=preload_seconds if args.preload else 0.0,
    )


def watch_sale(stack: Stack, event_id: int, linger: float) -> tuple[threading.Event, list[float]]:
    """Set the event `linger` seconds after the sale's event is sold out; the list gets
    the moment it was seen sold out (CLOCK_MONOTONIC µs). It looks every 50 ms: its
    lookups run in PostgreSQL, whose CPU is measured."""
    soldout = threading.Event()
    soldout_at: list[float] = []

    def watch() -> None:
        with psycopg.connect(stack.postgres.url("booking"), autocommit=True) as conn:
            while True:
                row = conn.execute(
                    "SELECT available_tickets FROM events WHERE id = %s", [event_id]
                ).fetchone()
                if row and row[0] == 0:
                    soldout_at.append(now_us())
                    break
                time.sleep(0.05)
        time.sleep(linger)
        soldout.set()

    threading.Thread(target=watch, daemon=True).start()
    return soldout, soldout_at


def measure(stack: Stack, wrk: str, args: argparse.Namespace, ready: Prepared) -> dict[str, Any]:
    """Warm-up, then the five runs; the figures that need the stack (and the sale's data)."""
    common = {"connections": args.connections, "tokens_file": ready.tokens_file,
              "workdir": stack.workdir}  # fmt: skip
    roots = stack.roots()

    def sampled(path: str, mode: str, **options: Any) -> Run:
        with CpuSampler(roots) as sampler:
            samples = run_wrk(wrk, ready.bases, path, mode=mode, **{**common, **options})
        return Run(samples, sampler.snapshots)

    log("warming up: bookings of another event (connections, caches, first-use costs)")
    warmup = run_wrk(wrk, ready.bases, "/api/bookings/", mode="book", duration_s=3,
                     event_id=ready.warmup_id, **common)  # fmt: skip

    log(f"1/5 pgbench: {args.connections} clients, {args.seconds} s")
    pgbench_tps = run_pgbench(stack, clients=args.connections, seconds=args.seconds)
    log(f"    {pgbench_tps:.0f} tps")

    log("2/5 authenticated no-op")
    noop = sampled("/api/whoami", "get", duration_s=args.seconds)
    log(f"    {rate(noop.ok()):.0f} req/s")

    log("3/5 events list")
    listing = sampled("/api/events/?page_size=50", "get", duration_s=args.seconds)
    log(f"    {rate(listing.ok()):.0f} req/s ({len(listing.samples) - len(listing.ok())} not 200)")

    log(
        f"4/5 a customer's bookings list ({seed.COLLECTOR_BOOKINGS:,} bookings), "
        f"{args.list_connections} connections"
    )
    collector = sampled("/api/bookings/", "get", duration_s=args.seconds,
                        tokens_file=ready.collector_file,
                        connections=args.list_connections)  # fmt: skip
    log(f"    {rate(collector.ok()):.0f} req/s")

    log(f"5/5 flash sale: {args.tickets:,} tickets")
    soldout, soldout_at = watch_sale(stack, ready.event_id, args.soldout_seconds)
    wal_before = wal_stats(stack)
    sale = sampled("/api/bookings/", "book", duration_s=SALE_TIMEOUT_SECONDS,
                   event_id=ready.event_id, stop_when=soldout)  # fmt: skip
    wal_after = wal_stats(stack)
    check = correctness(stack, ready.event_id, sale.samples, args.tickets)
    check.update(wal_per_booking(wal_before, wal_after, len(sale.ok(201))))
    check["booking_tables_after_sale"] = table_stats(stack)
    return {
        "pgbench_tps": pgbench_tps,
        "noop": noop,
        "listing": listing,
        "collector": collector,
        "sale": sale,
        "soldout_at_us": soldout_at[0] if soldout_at else None,
        "check": check,
        "warmup_5xx": sum(1 for s in warmup if s.status >= 500),
    }


def sale_figures(sale: Run, soldout_at_us: float | None) -> dict[str, Any]:
    booked = sale.ok(201)
    after = [s for s in sale.ok(409) if soldout_at_us and s.start_us >= soldout_at_us]
    first = min((s.start_us for s in booked), default=0.0)
    selling = (max(s.end_us for s in booked) - first) / 1e6 if booked else 0.0
    soldout_cpu = Run(after, sale.snapshots).cpu(409) if after else None
    return {
        "bookings_per_s": round(len(booked) / selling, 1) if selling else 0.0,
        "p50_ms_success": round(percentile(ms(booked), 50), 2),
        "p95_ms_success": round(percentile(ms(booked), 95), 2),
        "p99_ms_success": round(percentile(ms(booked), 99), 2),
        "soldout_per_s": round(rate(after), 1),
        "p50_ms_soldout": round(percentile(ms(after), 50), 2),
        "p95_ms_soldout": round(percentile(ms(after), 95), 2),
        "p99_ms_soldout": round(percentile(ms(after), 99), 2),
        "selling_seconds": round(selling, 3),
        "bookings_created": len(booked),
        **cpu_figures(sale.cpu(201), "booking"),
        "cpu_ms_per_soldout": round(soldout_cpu.ms_per_request, 3) if soldout_cpu else None,
        "bucket_seconds": BUCKET_SECONDS,
        # Bucket k covers [k, k + 1) times bucket_seconds from the sale's first request.
        "bookings_per_s_over_time": per_second_buckets(booked, sale.samples[0].start_us)
        if sale.samples
        else [],
    }


def assemble(
    args: argparse.Namespace, argv: list[str], measured: dict[str, Any], ready: Prepared
) -> dict[str, Any]:
    sale = sale_figures(measured["sale"], measured["soldout_at_us"])
    noop = measured["noop"].figures("noop")
    listing = measured["listing"].figures("events_list")
    collector = measured["collector"].figures("my_bookings")
    pgbench_tps = measured["pgbench_tps"]
    check = measured["check"]
    results: dict[str, Any] = {
        "bookings_per_s": sale["bookings_per_s"],
        "pgbench_tps": round(pgbench_tps, 1),
        "noop_rps": noop["noop_rps"],
        "events_list_rps": listing["events_list_rps"],
        "ratio_vs_pgbench": ratio(sale["bookings_per_s"], pgbench_tps),
        "ratio_vs_noop": ratio(sale["bookings_per_s"], noop["noop_rps"]),
        "ratio_soldout_vs_noop": ratio(sale["soldout_per_s"], noop["noop_rps"]),
        "ratio_events_list_vs_noop": ratio(listing["events_list_rps"], noop["noop_rps"]),
        "ratio_cpu_booking_vs_noop": ratio(
            sale["cpu_ms_per_booking"] or 0.0, noop["cpu_ms_per_noop"] or 0.0
        ),
        "ratio_my_bookings_vs_noop": ratio(collector["my_bookings_rps"], noop["noop_rps"]),
        **sale,
        **noop,
        **listing,
        **collector,
        **check,
        "errors_5xx_all_runs": check["errors_5xx"] + noop["noop_5xx"]
        + listing["events_list_5xx"] + collector["my_bookings_5xx"] + measured["warmup_5xx"],
        "preloaded_bookings": ready.preloaded,
        "preload_seconds": round(ready.preload_seconds, 1),
        "my_bookings_count": seed.COLLECTOR_BOOKINGS,
        "my_bookings_connections": args.list_connections,
        "listing_events": seed.LISTING_EVENTS,
        "tickets": args.tickets,
        "customers": ready.customers,
        "connections": args.connections,
        "instances": args.instances,
        "workers_per_instance": args.workers,
        "threads_per_worker": args.threads,
        "server": args.server,
        "hold_limit": args.hold_limit or DEFAULT_HOLD_LIMIT,
        "relay_running": not args.no_relay,
        "sweeper_running": True,
        "fast_path": not args.regular_path,
        "cpu_count": os.cpu_count(),
        "command": " ".join(["python3", "dev.py", "bench", *argv]),
    }  # fmt: skip
    if args.baseline:
        baseline = json.loads(args.baseline.read_text())["bookings_per_s"]
        results["baseline_bookings_per_s"] = baseline
        results["ratio_vs_baseline"] = ratio(sale["bookings_per_s"], baseline)
    return results


def write(results: dict[str, Any], measured: dict[str, Any], out: Path) -> Path:
    out_dir = out / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "results.json"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (out_dir / "results.md").write_text(table)
    sale: Run = measured["sale"]
    chart(results, sale.samples, measured["soldout_at_us"], sale.snapshots,
          out_dir / "flash-sale.png")  # fmt: skip
    write_samples(sale.samples, out_dir / "flash-sale-samples.csv")
    write_cpu(sale.snapshots, out_dir / "flash-sale-cpu.csv")
    print()
    print(table)
    print(f"chart: {out_dir / 'flash-sale.png'}")
    return json_path


def write_samples(samples: list[Sample], path: Path) -> None:
    with path.open("w") as out:
        out.write("start_us,latency_us,status\n")
        out.writelines(f"{s.start_us:.0f},{s.latency_us:.0f},{s.status}\n" for s in samples)


def write_cpu(snapshots: list[CpuSnapshot], path: Path) -> None:
    """The sale's CPU samples: clock ticks so far per kind and of the machine, by time."""
    kinds = sorted({kind for snap in snapshots for kind in snap.ticks})
    machine = sorted({name for snap in snapshots for name in snap.machine})
    with path.open("w") as out:
        out.write(",".join(["at_us", *kinds, *(f"machine {name}" for name in machine)]) + "\n")
        for snap in snapshots:
            values = [snap.ticks.get(k, 0) for k in kinds] + [snap.machine[n] for n in machine]
            out.write(",".join([f"{snap.at_us:.0f}", *map(str, values)]) + "\n")


def main(argv: list[str]) -> int:
    args = parse(argv)
    # Real buyers: the service's own hold limit (BOOKING_MAX_HELD_TICKETS, default 10), and
    # enough customers that it never ends the sale early (twice the tickets over the limit);
    # each connection books as several of them in turn.
    hold_limit = args.hold_limit or DEFAULT_HOLD_LIMIT
    customers = max(args.connections, 2 * -(-args.tickets // hold_limit))
    wrk = ensure_wrk()
    started = time.monotonic()
    with bench_stack() as stack:
        if args.regular_path:
            stack.env["BOOKING_FAST_PATH"] = "false"
        stack.env["BOOKING_MAX_HELD_TICKETS"] = str(hold_limit)
        ready = prepare(stack, args, customers)
        measured = measure(stack, wrk, args, ready)
        results = assemble(args, argv, measured, ready)
    results["elapsed_seconds"] = round(time.monotonic() - started, 1)
    results["targets"] = judge(results)
    print(write(results, measured, args.out))
    return 0
