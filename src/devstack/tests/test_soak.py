"""The soak command's pure parts: when a pruned table counts as flat, when its backlog grew,
when the booking rate held, the sampling moments and the table it prints (the run itself is
not part of CI)."""

from __future__ import annotations

from collections.abc import Callable

from devstack.soak import (
    BOOKINGS,
    TABLES,
    Sample,
    _every,
    judge,
    judging_window,
    pruned_tables_flat,
    rate_holds,
    table_markdown,
)

OUTBOX = next(table for table in TABLES if table.label == "booking.outbox_messages")
WINDOW = judging_window(retention=60, prune_interval=10)  # 130 s
LIMIT = 80.0  # the oldest row: retention and two intervals
KIB = 1024


def samples(
    oldest: Callable[[float], float],
    size_kib: Callable[[float], float] = lambda seconds: 1000,
    *,
    backlog: Callable[[float], int] = lambda seconds: 0,
    bookings_per_s: float = 5.0,
    until: float = 300,
) -> list[Sample]:
    """A sample every 10 s of a run where the outbox's oldest row is `oldest(t)` seconds old
    and it takes `size_kib(t)` KiB, every other table 1,000 rows and KiB, bookings steady."""
    taken = []
    for seconds in _every(10, until=until):
        rows = {table.label: 1000 for table in TABLES}
        rows[BOOKINGS] = round(bookings_per_s * seconds)
        size = {label: 1000 * KIB for label in rows}
        size[OUTBOX.label] = round(size_kib(seconds) * KIB)
        taken.append(
            Sample(
                seconds=seconds,
                rows=rows,
                bytes=size,
                oldest={table.label: 0.0 for table in TABLES if table.aged_from}
                | {OUTBOX.label: oldest(seconds)},
                backlog={table.label: 0 for table in TABLES if table.backlog}
                | {OUTBOX.label: backlog(seconds)},
            )
        )
    return taken


def pruned(seconds: float) -> float:
    """The oldest row of a table pruned every 10 s with a 60 s retention."""
    return min(seconds, 60 + seconds % 10)


def never_pruned(seconds: float) -> float:
    return seconds


def test_a_table_pruned_within_its_retention_whose_space_is_reused_is_flat() -> None:
    verdict = judge(samples(pruned), window=WINDOW, table=OUTBOX, oldest_limit=LIMIT)
    assert verdict.flat is True
    assert verdict.oldest == 60
    assert pruned_tables_flat(samples(pruned), window=WINDOW, oldest_limit=LIMIT)


def test_its_row_count_may_follow_the_load() -> None:
    surge = samples(pruned, lambda seconds: 1000 + (200 if seconds > 200 else 0))
    for sample in surge:
        sample.rows[OUTBOX.label] = 3000 if sample.seconds > 200 else 1500
    assert judge(surge, window=WINDOW, table=OUTBOX, oldest_limit=LIMIT).flat is True


def test_a_table_whose_rows_outlive_the_retention_is_not_flat() -> None:
    verdict = judge(samples(never_pruned), window=WINDOW, table=OUTBOX, oldest_limit=LIMIT)
    assert verdict.flat is False
    assert verdict.oldest == 300
    assert not pruned_tables_flat(samples(never_pruned), window=WINDOW, oldest_limit=LIMIT)


def test_a_table_whose_size_keeps_growing_is_not_flat() -> None:
    def growing(seconds: float) -> float:
        return 10 * seconds

    verdict = judge(samples(pruned, growing), window=WINDOW, table=OUTBOX, oldest_limit=LIMIT)
    assert (verdict.size_before, verdict.size_peak) == (2100 * KIB, 3000 * KIB)
    assert verdict.flat is False


def test_a_backlog_that_keeps_growing_is_named() -> None:
    taken = samples(pruned, backlog=lambda seconds: int(seconds))
    assert judge(taken, window=WINDOW, table=OUTBOX, oldest_limit=LIMIT).backlog_grew
    steady = samples(pruned, backlog=lambda seconds: 40 + int(seconds) % 20)
    assert not judge(steady, window=WINDOW, table=OUTBOX, oldest_limit=LIMIT).backlog_grew


def test_the_business_record_may_grow() -> None:
    taken = samples(pruned)
    for sample in taken:
        sample.rows["booking.payments"] = int(sample.seconds * 7)
        sample.bytes["booking.payments"] = int(sample.seconds * 7 * KIB)
    assert pruned_tables_flat(taken, window=WINDOW, oldest_limit=LIMIT)


def test_too_few_samples_after_the_window_say_nothing() -> None:
    short = samples(never_pruned, until=150)
    assert judge(short, window=WINDOW, table=OUTBOX, oldest_limit=LIMIT).flat is None
    assert pruned_tables_flat(short, window=WINDOW, oldest_limit=LIMIT)


def test_the_booking_rate_holds_unless_it_falls_by_more_than_the_tolerance() -> None:
    assert rate_holds(samples(pruned, until=290), window=WINDOW) == (5.0, 5.0, True)
    collapsing = samples(pruned, until=290)
    for sample in collapsing:  # 5/s until 210 s, then 1/s
        late = max(0.0, sample.seconds - 210)
        sample.rows[BOOKINGS] = round(5 * (sample.seconds - late) + late)
    assert rate_holds(collapsing, window=WINDOW) == (5.0, 1.0, False)


def test_samples_are_taken_every_interval_and_at_the_end() -> None:
    assert _every(10, until=30) == [0, 10, 20, 30]
    assert _every(10, until=25) == [0, 10, 20, 25]


def test_the_table_names_each_table_its_pruner_and_its_verdict() -> None:
    flat = table_markdown(samples(pruned), window=WINDOW, oldest_limit=LIMIT)
    kept = table_markdown(
        samples(never_pruned, backlog=lambda seconds: int(seconds)),
        window=WINDOW,
        oldest_limit=LIMIT,
    )
    assert len(flat.splitlines()) == 2 + len(TABLES) + 1
    assert "| booking.outbox_messages | booking relay | 1,000 / 1,000 | 60 (limit 80) |" in flat
    assert "| booking.bookings | — |" in flat
    assert flat.count("grows by design") == sum(1 for t in TABLES if not t.pruned_by)
    assert "**no**" not in flat
    assert "| 300 (limit 80) |" in kept
    assert kept.count("**no**: its backlog grew") == 1
