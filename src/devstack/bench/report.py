"""The run's report: a Markdown table whose labels follow the options, and the sale's chart
(answers per second, p99 and the cores each part of the stack kept busy, over time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devstack.bench.cpu import LOAD_KIND, OTHERS_KIND, CpuSnapshot, cores_over_time
from devstack.bench.load import Sample
from devstack.bench.measures import BUCKET_SECONDS, TARGETS, per_second_buckets, percentile


def by_kind(figures: dict[str, float] | None) -> str:
    if not figures:
        return "-"
    stack = sorted(((kind, ms) for kind, ms in figures.items() if kind != LOAD_KIND),
                   key=lambda item: -item[1])  # fmt: skip
    return ", ".join(f"{kind} {ms:.2f}" for kind, ms in stack)


def number(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,.{digits}f}"


def rows(r: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(measure, value, the key of its target) in the order of the table."""
    listing = f"events list, page of 50 of {r['listing_events']:,} (req/s)"
    collector = (
        f"a customer's bookings list, {r['my_bookings_count']:,} bookings, "
        f"{r.get('my_bookings_connections', r['connections'])} connections (req/s)"
    )
    table: list[tuple[str, str, str | None]] = [
        ("pgbench booking transaction (tps)", number(r["pgbench_tps"]), None),
        ("authenticated no-op (req/s)", number(r["noop_rps"]), None),
        (listing, number(r["events_list_rps"]), None),
        (collector, number(r["my_bookings_rps"]), None),
        ("successful bookings/s", number(r["bookings_per_s"]), None),
        ("selling time (s), bookings", f"{r['selling_seconds']:.1f}, {r['bookings_created']:,}",
         None),
        ("bookings/s ÷ pgbench tps", number(r["ratio_vs_pgbench"], 2), "ratio_vs_pgbench"),
        ("bookings/s ÷ no-op req/s", number(r["ratio_vs_noop"], 2), "ratio_vs_noop"),
        (
            "booking latency p50 / p95 / p99 (ms)",
            f"{r['p50_ms_success']:.1f} / {r['p95_ms_success']:.1f} / {r['p99_ms_success']:.1f}",
            "p99_ms_success",
        ),
        ("stack CPU per booking (ms)", number(r["cpu_ms_per_booking"], 2), None),
        ("stack CPU per no-op (ms)", number(r["cpu_ms_per_noop"], 2), None),
        ("CPU per booking ÷ per no-op", number(r["ratio_cpu_booking_vs_noop"], 2),
         "ratio_cpu_booking_vs_noop"),
        ("CPU per booking by kind (ms)", by_kind(r.get("cpu_ms_per_booking_by_kind")), None),
        ("CPU per no-op by kind (ms)", by_kind(r.get("cpu_ms_per_noop_by_kind")), None),
        (
            "WAL per booking: records / full-page images / bytes",
            f"{number(r.get('wal_records_per_booking'), 1)} / "
            f"{number(r.get('wal_fpi_per_booking'), 2)} / "
            f"{number(r.get('wal_bytes_per_booking'), 0)}",
            None,
        ),
        (
            "cores in the sale: stack / load generator / others; disk wait, stolen",
            f"{number(r.get('cpu_cores_busy_booking'), 2)} / "
            f"{number(r.get('load_generator_cores_booking'), 2)} / "
            f"{number(r.get('other_cores_booking'), 2)} of {r['cpu_count']}; "
            f"{number(r.get('iowait_cores_booking'), 2)}, "
            f"{number(r.get('steal_cores_booking'), 2)}",
            None,
        ),
        ("sold-out answers/s", number(r["soldout_per_s"]), None),
        ("sold-out ÷ no-op", number(r["ratio_soldout_vs_noop"], 2), None),
        (
            "sold-out latency p50 / p95 / p99 (ms)",
            f"{r['p50_ms_soldout']:.1f} / {r['p95_ms_soldout']:.1f} / {r['p99_ms_soldout']:.1f}",
            None,
        ),
        ("events list ÷ no-op", number(r["ratio_events_list_vs_noop"], 2),
         "ratio_events_list_vs_noop"),
        ("bookings list ÷ no-op", number(r["ratio_my_bookings_vs_noop"], 2), None),
        ("bookings list p50 / p99 (ms)",
         f"{r['my_bookings_p50_ms']:.1f} / {r['my_bookings_p99_ms']:.1f}", "my_bookings_p99_ms"),
    ]  # fmt: skip
    if r["preloaded_bookings"]:
        table.append(("bookings stored before the sale", number(r["preloaded_bookings"]), None))
    if r.get("ratio_vs_baseline") is not None:
        table.append(
            ("bookings/s ÷ the baseline run's", number(r["ratio_vs_baseline"], 2),
             "ratio_vs_baseline")
        )  # fmt: skip
    table += [
        (f"tickets sold (of {r['tickets']:,})", number(r["tickets_sold"]), None),
        ("oversold", str(r["oversold"]), "oversold"),
        ("5xx answers (every run)", str(r["errors_5xx_all_runs"]), "errors_5xx_all_runs"),
        ("conservation holds", str(r["conservation_holds"]), None),
        ("every 201 has its booking row", str(r["every_201_has_its_row"]),
         "every_201_has_its_row"),
        (
            "most tickets held by one customer (limit)",
            f"{r['most_tickets_held_by_one_customer']} ({r['hold_limit']})",
            None,
        ),
        ("customers who booked (of)", f"{r['customers_who_booked']:,} ({r['customers']:,})",
         None),
    ]  # fmt: skip
    return table


def markdown(results: dict[str, Any]) -> str:
    bars = {target.key: target.label for target in TARGETS}
    judged = results.get("targets", {})
    lines = ["| measure | value | target |", "|---|---|---|"]
    for name, value, key in rows(results):
        target = ""
        if key is not None and key in judged:
            target = f"{bars[key]}: {'met' if judged[key]['met'] else '**missed**'}"
        lines.append(f"| {name} | {value} | {target} |")
    return "\n".join(lines) + "\n"


def title(results: dict[str, Any]) -> str:
    preload = (
        f", {results['preloaded_bookings']:,} bookings stored"
        if results["preloaded_bookings"]
        else ""
    )
    return (
        f"Flash sale: {results['tickets']:,} tickets, {results['connections']} connections, "
        f"{results['instances']} booking instances{preload}"
    )


def chart(
    results: dict[str, Any],
    sale: list[Sample],
    soldout_at_us: float | None,
    snapshots: list[CpuSnapshot],
    path: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not sale:
        return
    t0 = sale[0].start_us
    fig, (answers, latency, cores) = plt.subplots(3, 1, figsize=(12, 9), sharex=True)
    for status, color, label in ((201, "tab:green", "booked (201)"),
                                 (409, "tab:orange", "sold out (409)")):  # fmt: skip
        chosen = [s for s in sale if s.status == status]
        rates = per_second_buckets(chosen, t0)
        times = [index * BUCKET_SECONDS for index in range(len(rates))]
        answers.plot(times, rates, color=color, label=label, drawstyle="steps-post")
        p99: list[list[float]] = [[] for _ in rates]
        for s in chosen:
            index = int((s.end_us - t0) / 1e6 / BUCKET_SECONDS)
            if 0 <= index < len(p99):
                p99[index].append(s.latency_us / 1000)
        latency.plot(times, [percentile(values, 99) for values in p99], color=color,
                     label=f"p99 {label}", drawstyle="steps-post")  # fmt: skip
    # Up to the last answer: wrk's processes, once ended and before they are reaped, report
    # only their main thread's time, and the load generator's line would dive.
    last = max(s.end_us for s in sale)
    points = cores_over_time([c for c in snapshots if c.at_us <= last], t0)
    kinds = sorted({kind for _, busy in points for kind in busy} - {LOAD_KIND, OTHERS_KIND})
    if points:
        times = [at for at, _ in points]
        cores.stackplot(times, *[[busy.get(k, 0.0) for _, busy in points] for k in kinds],
                        labels=kinds, step="pre", alpha=0.8)  # fmt: skip
        for kind, style in ((LOAD_KIND, ":"), (OTHERS_KIND, "--")):
            cores.plot(times, [busy.get(kind, 0.0) for _, busy in points], color="black",
                       linestyle=style, linewidth=1, label=kind)  # fmt: skip
    for axis in (answers, latency, cores):
        if soldout_at_us is not None:
            axis.axvline((soldout_at_us - t0) / 1e6, color="grey", linestyle="--", label="sold out")
        axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
        axis.grid(alpha=0.3)
    answers.set_ylabel(f"answers / s ({BUCKET_SECONDS} s buckets)")
    latency.set_ylabel("latency p99 (ms)")
    cores.set_ylabel("cores busy")
    cores.set_xlabel("seconds since the sale opened")
    answers.set_title(title(results))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
