"""The benchmark's arithmetic: CPU accounting from /proc, throughput buckets, windows,
targets and the labels of its report."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from django.db import connection

from devstack.bench.cpu import (
    CLOCK_TICKS,
    LOAD_KIND,
    CpuSnapshot,
    ProcStat,
    cpu_window,
    kinds_of,
    parse_machine,
    parse_stat,
    read_processes,
    snapshot,
    ticks_by_kind,
)
from devstack.bench.load import Sample
from devstack.bench.measures import judge, per_second_buckets, wal_per_booking
from devstack.bench.report import markdown, title
from devstack.bench.seed import stored_booking_created, token_subject
from servicekit.messages import BookingCreated
from servicekit.messages.envelope import message_convert

# A real line's shape: a command name with a space and a parenthesis, then state, ppid, ...
STAT = (
    "4242 (granian (wrk) 1) S 4200 4242 4242 0 -1 4194560 1234 0 0 0 "
    "150 30 7 3 20 0 17 0 123456 1000000 2000 18446744073709551615 "
    "1 1 0 0 0 0 0 16781312 1 0 0 0 17 1 0 0 0 0 0"
)


def test_a_stat_line_gives_pid_parent_and_all_four_cpu_times() -> None:
    stat = parse_stat(STAT)
    assert (stat.pid, stat.ppid) == (4242, 4200)
    assert stat.ticks == 150 + 30 + 7 + 3  # utime, stime, and the reaped children's


def test_each_process_takes_the_kind_of_its_nearest_root() -> None:
    processes = {
        1: ProcStat(1, 0, 0),
        10: ProcStat(10, 1, 5),  # granian, a root
        11: ProcStat(11, 10, 100),  # its worker
        12: ProcStat(12, 11, 1),  # a thread pool's helper under the worker
        20: ProcStat(20, 1, 7),  # the postmaster, a root
        21: ProcStat(21, 20, 40),  # a backend
        30: ProcStat(30, 1, 9),  # the benchmark itself, a root
        31: ProcStat(31, 30, 50),  # wrk
        32: ProcStat(32, 30, 3),  # a server started by the benchmark, a root of its own
        40: ProcStat(40, 1, 1000),  # somebody else's
    }
    roots = {10: "booking web", 20: "postgres", 30: LOAD_KIND, 32: "relay"}
    assert kinds_of(processes, roots) == {
        10: "booking web", 11: "booking web", 12: "booking web", 20: "postgres",
        21: "postgres", 30: LOAD_KIND, 31: LOAD_KIND, 32: "relay",
    }  # fmt: skip
    assert ticks_by_kind(processes, roots) == {
        "booking web": 106, "postgres": 47, LOAD_KIND: 59, "relay": 3,
    }  # fmt: skip


def test_the_cpu_of_a_child_that_exited_stays_in_its_root() -> None:
    """A PostgreSQL backend or a wrk process ends inside a window: its time moves into its
    parent's cutime, and the kind's total keeps it."""
    burn = "import time; end = time.process_time() + 0.4\nwhile time.process_time() < end: pass"
    parent = subprocess.Popen(
        [sys.executable, "-c",
         f"import subprocess, sys, time; subprocess.run([sys.executable, '-c', {burn!r}]); "
         "time.sleep(30)"],
    )  # fmt: skip
    try:
        roots = {parent.pid: "relay"}
        before = snapshot(roots)
        deadline = time.monotonic() + 20
        while not [p for p in read_processes().values() if p.ppid == parent.pid]:
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.01)
        while [p for p in read_processes().values() if p.ppid == parent.pid]:
            assert time.monotonic() < deadline, "the child never ended"
            time.sleep(0.05)
        after = snapshot(roots)
    finally:
        parent.kill()
        parent.wait()
    burned = (after.ticks["relay"] - before.ticks.get("relay", 0)) / CLOCK_TICKS
    assert burned >= 0.35


def test_the_benchmark_process_reads_its_own_line() -> None:
    mine = read_processes()[os.getpid()]
    assert mine.ppid == os.getppid()
    start = time.process_time()
    while time.process_time() - start < 0.2:
        pass
    assert read_processes()[os.getpid()].ticks >= mine.ticks + 0.15 * CLOCK_TICKS


def sample(start_s: float, latency_ms: float, status: int = 201) -> Sample:
    return Sample(start_s * 1e6, latency_ms * 1000, status)


def test_buckets_count_requests_by_their_end_with_empty_ones_kept() -> None:
    samples = [sample(0.0, 100), sample(0.2, 100), sample(0.6, 10), sample(1.6, 10)]
    assert per_second_buckets(samples, origin_us=0.0, bucket_s=0.5) == [4.0, 2.0, 0.0, 2.0]


def test_a_cpu_window_divides_by_the_requests_that_ended_inside_it() -> None:
    snapshots = [
        CpuSnapshot(0.5e6, {"booking web": 0, "postgres": 0, LOAD_KIND: 0}),
        CpuSnapshot(1.0e6, {"booking web": 10, "postgres": 5, LOAD_KIND: 2}),
        CpuSnapshot(2.0e6, {"booking web": 30, "postgres": 15, LOAD_KIND: 6}),
        CpuSnapshot(9.0e6, {"booking web": 99, "postgres": 99, LOAD_KIND: 99}),
    ]
    requests = [sample(0.9 + k * 0.05, 5) for k in range(24)]  # end 0.905 .. 2.055 s
    window = cpu_window(snapshots, requests)
    assert window is not None
    assert (window.start_us, window.end_us) == (1.0e6, 2.0e6)
    assert window.requests == 20  # ended in (1.0, 2.0]
    tick_ms = 1000 / CLOCK_TICKS
    assert window.stack_ms == pytest.approx(30 * tick_ms)  # the load generator is not the stack
    assert window.ms_per_request == pytest.approx(30 * tick_ms / 20)
    assert window.ms_per_request_by_kind()["postgres"] == pytest.approx(10 * tick_ms / 20)
    assert window.load_cores == pytest.approx(4 * tick_ms / 1000)


def test_the_machine_line_gives_busy_disk_wait_and_stolen_time() -> None:
    line = "cpu  2200856 2881 484965 1558540 20941 7 34660 26130 0 0"
    assert parse_machine(line) == {
        "busy": 2200856 + 2881 + 484965 + 7 + 34660, "iowait": 20941, "steal": 26130,
    }  # fmt: skip


def test_what_the_machine_did_besides_the_stack_and_the_load_is_the_others() -> None:
    snapshots = [
        CpuSnapshot(0.0, {"postgres": 0, LOAD_KIND: 0}, {"busy": 0, "iowait": 0, "steal": 0}),
        CpuSnapshot(2e6, {"postgres": 100, LOAD_KIND: 20}, {"busy": 300, "iowait": 50, "steal": 0}),
    ]
    window = cpu_window(snapshots, [sample(0.0, 1000), sample(1.0, 1000)])
    assert window is not None
    tick_s = 1 / CLOCK_TICKS
    assert window.stack_cores == pytest.approx(100 * tick_s / 2)
    assert window.other_cores == pytest.approx((300 - 120) * tick_s / 2)
    assert window.cores(window.machine_ms["iowait"]) == pytest.approx(50 * tick_s / 2)


def test_no_window_without_two_snapshots_inside_the_requests() -> None:
    snapshots = [CpuSnapshot(0.0, {}), CpuSnapshot(5e6, {})]
    assert cpu_window(snapshots, [sample(1.0, 5), sample(2.0, 5)]) is None
    assert cpu_window(snapshots, []) is None


def results(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "pgbench_tps": 2000.0, "noop_rps": 3000.0, "events_list_rps": 2000.0,
        "my_bookings_rps": 900.0, "bookings_per_s": 1700.0, "selling_seconds": 29.4,
        "bookings_created": 20_000, "ratio_vs_pgbench": 0.85, "ratio_vs_noop": 0.567,
        "p50_ms_success": 30.0, "p95_ms_success": 80.0, "p99_ms_success": 120.0,
        "cpu_ms_per_booking": 1.4, "cpu_ms_per_noop": 0.6, "ratio_cpu_booking_vs_noop": 2.333,
        "cpu_ms_per_booking_by_kind": {"booking web": 0.9, "postgres": 0.5, LOAD_KIND: 0.2},
        "cpu_ms_per_noop_by_kind": {"booking web": 0.6},
        "cpu_cores_busy_booking": 1.6, "load_generator_cores_booking": 0.3, "cpu_count": 2,
        "soldout_per_s": 3500.0, "ratio_soldout_vs_noop": 1.167, "p50_ms_soldout": 5.0,
        "p95_ms_soldout": 20.0, "p99_ms_soldout": 40.0, "ratio_events_list_vs_noop": 0.667,
        "ratio_my_bookings_vs_noop": 0.3, "my_bookings_p50_ms": 20.0,
        "my_bookings_p99_ms": 45.0, "preloaded_bookings": 0, "tickets": 50_000,
        "tickets_sold": 50_000, "oversold": 0, "errors_5xx_all_runs": 0,
        "conservation_holds": True, "every_201_has_its_row": True,
        "most_tickets_held_by_one_customer": 10, "hold_limit": 10,
        "customers_who_booked": 9_800, "customers": 10_000, "listing_events": 10_000,
        "my_bookings_count": 1_000, "connections": 64, "instances": 2,
    }  # fmt: skip
    base.update(changes)
    base["targets"] = judge(base)
    return base


def test_labels_follow_the_options() -> None:
    table = markdown(results(tickets=30_000, listing_events=10_000))
    assert "tickets sold (of 30,000)" in table
    assert "2,000" not in table.split("tickets sold")[1].split("|")[0]
    assert "page of 50 of 10,000" in table
    assert "bookings stored before the sale" not in table
    preloaded = results(preloaded_bookings=1_000_000)
    assert "| bookings stored before the sale | 1,000,000 |" in markdown(preloaded)
    assert title(preloaded) == (
        "Flash sale: 50,000 tickets, 64 connections, 2 booking instances, 1,000,000 bookings stored"
    )


def test_each_target_is_judged_against_its_bar() -> None:
    judged = results()["targets"]
    assert isinstance(judged, dict)
    assert judged["ratio_vs_pgbench"] == {"value": 0.85, "bar": 1.0, "met": False}
    assert judged["p99_ms_success"]["met"] is False
    assert judged["ratio_cpu_booking_vs_noop"]["met"] is False
    assert judged["ratio_events_list_vs_noop"]["met"] is True
    assert judged["my_bookings_p99_ms"]["met"] is True
    assert judged["oversold"]["met"] is True
    assert "ratio_vs_baseline" not in judged  # only with --baseline
    table = markdown(results())
    assert "| bookings/s ÷ pgbench tps | 0.85 | bookings/s ÷ pgbench tps ≥ 1.0: **missed** |" in (
        table
    )
    assert "oversold = 0: met" in table


def test_the_cpu_breakdown_leaves_the_load_generator_out() -> None:
    row = next(line for line in markdown(results()).splitlines() if "per booking by kind" in line)
    assert "booking web 0.90, postgres 0.50" in row
    assert LOAD_KIND not in row


def test_a_token_names_its_customer() -> None:
    # {"sub":"5b0c2c55-3a4e-4b7e-9d4c-2f1b7c1f0a11","role":"customer"}, unpadded base64url
    payload = (
        "eyJzdWIiOiI1YjBjMmM1NS0zYTRlLTRiN2UtOWQ0Yy0yZjFiN2MxZjBhMTEiLCJyb2xlIjoiY3VzdG9tZXIifQ"
    )
    assert token_subject(f"header.{payload}.signature") == "5b0c2c55-3a4e-4b7e-9d4c-2f1b7c1f0a11"


@pytest.mark.django_db
def test_the_preloaded_outbox_rows_decode_as_the_message_model() -> None:
    """The data the preload writes in SQL is a `booking.created` a consumer accepts."""
    row = (
        f"SELECT {stored_booking_created(booking='b', event='e')} FROM "  # noqa: S608
        "(VALUES (7, '5b0c2c55-3a4e-4b7e-9d4c-2f1b7c1f0a11'::uuid, 3,"
        " '2026-05-01 20:10:00+02'::timestamptz, 75.00::numeric(12, 2), 'USD'))"
        " AS b(id, user_id, tickets_booked, expires_at, amount, currency),"
        " (VALUES (42, 'd3b07384-d9a0-4c1b-8e2a-6b3f1c0e9f10'::uuid, 'Past event 1', 'USD'))"
        " AS e(id, organizer_id, name, currency)"
    )
    with connection.cursor() as cursor:
        cursor.execute(row)
        found = cursor.fetchone()
    assert found is not None
    message = message_convert("booking.created", json.loads(found[0]))  # Django reads jsonb as text
    assert isinstance(message, BookingCreated)
    assert (message.booking_id, message.event_id, message.tickets_booked) == (7, 42, 3)
    assert message.amount == Decimal("75.00")
    assert message.expires_at == dt.datetime(2026, 5, 1, 18, 10, tzinfo=dt.UTC)


def test_the_sale_s_wal_is_counted_per_successful_booking() -> None:
    """pg_stat_wal before and after the sale (records, full-page images, bytes)."""
    figures = wal_per_booking((1_000, 10, 500_000), (41_000, 2_010, 16_500_000), 8_000)
    assert figures == {
        "wal_records_per_booking": 5.0,
        "wal_fpi_per_booking": 0.25,
        "wal_bytes_per_booking": 2_000,
    }
    assert set(wal_per_booking((0, 0, 0), (5, 1, 100), 0).values()) == {None}
    table = markdown(results(**figures))
    assert "| WAL per booking: records / full-page images / bytes | 5.0 / 0.25 / 2,000 |" in table
