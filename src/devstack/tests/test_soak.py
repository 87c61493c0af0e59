"""The soak command's pure parts: when a table counts as flat, when the booking rate held,
the sampling moments and the table it prints (the run itself is not part of CI)."""

from __future__ import annotations

from collections.abc import Callable

from devstack.soak import (
    BOOKINGS,
    TABLES,
    Sample,
    _every,
    judge,
    pruned_tables_flat,
    rate_holds,
    table_markdown,
)

OUTBOX = "booking.outbox_messages"
WINDOW = 80.0


def samples(
    rows: Callable[[float], float], *, bookings_per_s: float = 5.0, until: float = 240
) -> list[Sample]:
    """A sample every 10 s: `rows(t)` rows (and as many KiB) in the outbox, 1,000 in every
    other table, bookings made at a steady rate."""
    taken = []
    for seconds in _every(10, until=until):
        counts = {table.label: 1000 for table in TABLES}
        counts[OUTBOX] = round(rows(seconds))
        counts[BOOKINGS] = round(bookings_per_s * seconds)
        size = {label: count * 1024 for label, count in counts.items()}
        taken.append(Sample(seconds=seconds, rows=counts, bytes=size))
    return taken


def sawtooth(seconds: float) -> float:
    """A table pruned every 10 s with a 60 s retention at 20 rows/s, seen between 1,200 and
    1,400 rows."""
    if seconds < 60:
        return 20 * seconds
    return 1200 if int(seconds // 10) % 2 == 0 else 1400


def test_a_pruned_table_that_saws_around_its_retention_is_flat() -> None:
    verdict = judge(samples(sawtooth), window=WINDOW, table=OUTBOX, measure="rows")
    assert verdict.reference == 1200
    assert verdict.flat is True
    assert pruned_tables_flat(samples(sawtooth), window=WINDOW)


def test_a_table_that_keeps_growing_is_not_flat() -> None:
    def growing(seconds: float) -> float:
        return 20 * seconds

    for measure in ("rows", "bytes"):
        verdict = judge(samples(growing), window=WINDOW, table=OUTBOX, measure=measure)
        assert verdict.flat is False
        assert verdict.peak == 20 * 240 * (1024 if measure == "bytes" else 1)
    assert not pruned_tables_flat(samples(growing), window=WINDOW)


def test_the_business_record_may_grow() -> None:
    taken = samples(sawtooth)
    for sample in taken:
        sample.rows["booking.bookings"] = int(sample.seconds * 7)
    assert pruned_tables_flat(taken, window=WINDOW)


def test_too_few_samples_after_the_window_say_nothing() -> None:
    verdict = judge(samples(sawtooth, until=90), window=WINDOW, table=OUTBOX, measure="rows")
    assert verdict.flat is None
    assert pruned_tables_flat(samples(sawtooth, until=90), window=WINDOW)


def test_the_booking_rate_holds_unless_it_falls_by_more_than_the_tolerance() -> None:
    steady = samples(sawtooth)
    assert rate_holds(steady, window=WINDOW) == (5.0, 5.0, True)
    collapsing = samples(sawtooth)
    for sample in collapsing:  # 5/s until 160 s, then 1/s
        late = max(0.0, sample.seconds - 160)
        sample.rows[BOOKINGS] = round(5 * (sample.seconds - late) + 1 * late)
    early, late, holds = rate_holds(collapsing, window=WINDOW)
    assert (early, late, holds) == (5.0, 1.0, False)


def test_samples_are_taken_every_interval_and_at_the_end() -> None:
    assert _every(10, until=30) == [0, 10, 20, 30]
    assert _every(10, until=25) == [0, 10, 20, 25]


def test_the_table_names_each_table_its_pruner_and_its_verdict() -> None:
    def growing(seconds: float) -> float:
        return 20 * seconds

    flat = table_markdown(samples(sawtooth), window=WINDOW)
    grown = table_markdown(samples(growing), window=WINDOW)
    assert len(flat.splitlines()) == 2 + len(TABLES) + 1
    assert "| booking.outbox_messages | booking relay | 1,200 / 1,400 / 1,200 |" in flat
    assert "| booking.bookings | — |" in flat
    assert flat.count("grows by design") == sum(1 for t in TABLES if not t.pruned_by)
    assert "**no**" not in flat
    assert "| booking.outbox_messages | booking relay | 1,600 / 4,800 / 4,800 |" in grown
    assert grown.count("**no**") == 1
