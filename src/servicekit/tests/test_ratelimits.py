"""servicekit.ratelimits: a sliding window, counted atomically in PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from servicekit.ratelimits import Limit, _Window, count

NAME = "RATE_LIMIT_PROBE_PER_KEY"
PERIOD = 60.0
START = 1_800_000_000.0  # the start of a fixed window of 60 s (a multiple of 60)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, settings: Any) -> list[float]:
    settings.RATE_LIMIT_PROBE_PER_KEY = "10/m"
    now = [START]
    monkeypatch.setattr("servicekit.ratelimits.time.time", lambda: now[0])
    return now


def attempts(n: int, key: str = "k") -> list[bool]:
    """n attempts in one statement: which passed."""
    return [verdict is None for verdict in count([Limit(NAME, key)] * n)]


@pytest.mark.django_db
def test_no_burst_across_a_window_edge(clock: list[float]) -> None:
    clock[0] = START + 59.9
    assert attempts(10) == [True] * 10
    clock[0] = START + 60.1  # a new fixed window: fixed windows would allow 10 more now
    assert attempts(1) == [False]
    clock[0] = START + 90  # half the last period lies in the previous window: 5 weigh
    assert attempts(5) == [True] * 4 + [False]


@pytest.mark.django_db
def test_retry_after_is_honest(clock: list[float]) -> None:
    assert attempts(11) == [True] * 10 + [False]
    (refused,) = count([Limit(NAME, "k")])
    assert refused is not None
    clock[0] += refused.wait
    assert attempts(1) == [True]


@pytest.mark.django_db
def test_keys_and_limits_count_apart(clock: list[float], settings: Any) -> None:
    settings.RATE_LIMIT_PROBE_PER_KEY = "2/m"
    assert attempts(3, key="a") == [True, True, False]
    assert attempts(2, key="b") == [True, True]
    settings.RATE_LIMIT_PROBE_PER_KEY = None  # off
    assert attempts(5, key="a") == [True] * 5


@pytest.mark.parametrize(
    ("before", "elapsed", "passes"),
    [(0, 0, 10), (10, 0, 0), (10, 30, 5), (10, 54, 9), (4, 45, 9)],
)
def test_the_previous_window_weighs_what_the_last_period_still_covers(
    before: int, elapsed: float, passes: int
) -> None:
    window = _Window(cap=10, period=60, elapsed=elapsed)
    verdicts = [window.judge(before=before, number=n) is None for n in range(1, 12)]
    assert verdicts == [True] * passes + [False] * (11 - passes)


@pytest.mark.django_db
def test_retry_after_counts_every_attempt_of_the_statement(
    clock: list[float], settings: Any
) -> None:
    # One batch of five attempts by one caller against 3/m: the fourth's Retry-After must
    # cover the fifth too, which counted as well.
    settings.RATE_LIMIT_PROBE_PER_KEY = "3/m"
    verdicts = count([Limit(NAME, "k")] * 5)
    assert [v is None for v in verdicts] == [True, True, True, False, False]
    fourth = verdicts[3]
    assert fourth is not None
    clock[0] += fourth.wait
    assert attempts(1) == [True]


@pytest.mark.parametrize("rate", ["5/0m", "5/00h", "/m", "5/w", "5"])
def test_a_rate_no_window_can_hold_is_refused_at_start(
    rate: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from servicekit.conf import env_rate

    monkeypatch.setenv("RATE_LIMIT_PROBE_PER_KEY", rate)
    with pytest.raises(ImproperlyConfigured):
        env_rate("RATE_LIMIT_PROBE_PER_KEY", "10/m")


def _prepared_statements() -> set[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_in_autocommit_the_count_is_prepared_once_per_session_and_again_after_a_reset(
    clock: list[float],
) -> None:
    """Outside a transaction the count runs as a prepared statement; a pooler's reset of the
    session (DISCARD ALL) makes it prepare again, and no attempt is lost or counted twice."""
    from django.db import connection

    assert attempts(4) == [True] * 4
    assert "turnstile_rate_count" in _prepared_statements()
    with connection.cursor() as cursor:
        cursor.execute("DISCARD ALL")
    assert "turnstile_rate_count" not in _prepared_statements()
    assert attempts(7) == [True] * 6 + [False]
    assert "turnstile_rate_count" in _prepared_statements()


@pytest.mark.django_db
def test_inside_a_transaction_the_count_is_sent_whole(clock: list[float]) -> None:
    """In a caller's transaction a failed EXECUTE would abort it: the statement goes whole."""
    assert attempts(11) == [True] * 10 + [False]


@pytest.mark.django_db
def test_the_counters_write_no_wal() -> None:
    """The counters' table is unlogged (emptied by a crash, as a cache server's would be);
    its key has no pattern index, which no query uses."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT relpersistence FROM pg_class WHERE relname = 'servicekit_cache'")
        assert cursor.fetchone() == ("u",)
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'servicekit_cache'")
        indexes = {name for (name,) in cursor.fetchall()}
    assert not any(name.endswith("_like") for name in indexes), indexes


def _counters() -> list[tuple[int, int, int]]:
    from servicekit.models import CacheEntry

    return list(CacheEntry.objects.values_list("window_index", "current_count", "previous_count"))


@pytest.mark.django_db
def test_one_row_per_key_rolls_over_from_window_to_window(clock: list[float]) -> None:
    """A key keeps one row: counted into its window, rolled over into the next (its count
    weighing as the previous window's), and into a later one with nothing before it."""
    window = int(START // PERIOD)
    assert attempts(10) == [True] * 10
    assert _counters() == [(window, 10, 0)]
    clock[0] = START + PERIOD + 30  # the next window, halfway: 5 of the 10 still weigh
    assert attempts(6) == [True] * 5 + [False]
    assert _counters() == [(window + 1, 6, 10)]
    clock[0] = START + 3 * PERIOD + 1  # a window skipped: nothing before this one weighs
    assert attempts(11) == [True] * 10 + [False]
    assert _counters() == [(window + 3, 11, 0)]
    # A process whose clock is behind counts into the newer window it finds.
    clock[0] = START + 3 * PERIOD - 0.5
    assert attempts(1) == [False]
    assert _counters() == [(window + 3, 12, 0)]


@pytest.mark.django_db(transaction=True)
def test_the_kept_plan_never_scans_the_counters_whatever_they_held_when_planned(
    clock: list[float],
) -> None:
    """The prepared count is planned while the table is empty (a fresh deployment) and
    PostgreSQL settles on that generic plan; with thousands of rows later, the plan still
    reaches them only by the primary key (as ON CONFLICT's arbiter), never by a scan."""
    from django.db import connection

    for n in range(8):  # past the custom plans PostgreSQL tries first
        assert attempts(1, key=f"warm {n}") == [True]
    window = int(START // PERIOD)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans FROM pg_prepared_statements WHERE name = 'turnstile_rate_count'"
        )
        assert cursor.fetchone()[0] > 0  # it runs the generic plan
        cursor.execute(
            "INSERT INTO servicekit_cache"
            " (cache_key, window_index, current_count, previous_count, expires)"
            " SELECT 'filler ' || g, %s, 1, 0, now() + interval '1h'"
            " FROM generate_series(1, 20000) AS g",
            [window],
        )
        cursor.execute(
            "EXPLAIN EXECUTE turnstile_rate_count (%s, %s, %s)",
            [["k1", "k2"], [window, window], [clock_expiry(), clock_expiry()]],
        )
        plan = "\n".join(line for (line,) in cursor.fetchall())
    assert "Insert on servicekit_cache" in plan, plan
    assert "Conflict Arbiter Indexes: servicekit_cache_pkey" in plan, plan
    assert "Scan on servicekit_cache" not in plan, plan
    assert "Scan using" not in plan, plan


def clock_expiry() -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(START + 2 * PERIOD, tz=UTC)


@pytest.mark.django_db
def test_counters_that_no_longer_weigh_are_purged_as_counts_go_on(
    clock: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    from servicekit import ratelimits

    monkeypatch.setattr(ratelimits, "PURGE_EVERY", 1)
    for key in ("a", "b", "c"):
        assert attempts(1, key=key) == [True]
    assert len(_counters()) == 3
    clock[0] = START + PERIOD + 1  # a and b still weigh as the previous window
    assert attempts(1, key="a") == [True]
    assert len(_counters()) == 3
    clock[0] = START + 2 * PERIOD + 1  # b and c no longer weigh; a (counted last window) does
    assert attempts(1, key="d") == [True]
    assert sorted(key for key, *_ in _rows()) == sorted([_key("a"), _key("d")])


def _rows() -> list[tuple[str, int]]:
    from servicekit.models import CacheEntry

    return list(CacheEntry.objects.values_list("cache_key", "current_count"))


def _key(key: str) -> str:
    import hashlib

    return f"ratelimit:{NAME.lower()}:60:{hashlib.sha256(key.encode()).hexdigest()[:32]}"
