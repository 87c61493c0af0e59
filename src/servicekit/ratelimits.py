"""Rate limits shared by every process of a service.

Each limit is a setting `RATE_LIMIT_<ACTION>_PER_<SCOPE>` ("40/h", or None when "off"; see
servicekit.conf.env_rate), judged over a sliding window of its period: the attempts of the
current fixed window, plus those of the previous one weighted by how much of it still lies
within the last period (the sliding-window counter). A limited address or account recovers
by itself as its attempts age out. The previous window is assumed evenly spread, so a burst
at the very end of one window and another late in the next can pass up to about twice the
cap within one true period; the long-run rate holds. An attempt is counted
*before* the work it limits, so a concurrent burst is judged as a burst: at most the limit
of them get through, however many arrive at once.

The counters are rows of a table in the service's own PostgreSQL (servicekit.models.
CacheEntry), shared by every process: one row per key, holding the counts of its latest
window and of the one before. One INSERT ... ON CONFLICT counts any number of keys at once,
atomically, in one round trip, rolling a row over to a new window as it counts. (django-
ratelimit, the usual library, counts through Django's cache API with add-then-incr: several
round trips, one key at a time, and Django has no cache backend on PostgreSQL whose
increment is atomic; the batched booking path must count a whole batch's keys with one
statement.) Keys are hashed, so an address or an email of any length fits the table's key.

In a flash sale, counting each buyer was a quarter of a booking's cost. The table is
unlogged (migration 0002: no WAL, no wait for the disk; emptied by a crash, as a cache
server's would be), and the statement is prepared once per session (servicekit.prepared).
It reaches the table only through its primary key, as the arbiter of ON CONFLICT, so
PostgreSQL's generic plan (planned once per session) is right whatever the table held when
it was made: a count that read the previous window's row by a join was planned on every
call (a generic plan made while the table was empty scanned it whole once it was not).
Rows whose windows no longer weigh are deleted every `PURGE_EVERY` counts of a process.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection

from servicekit.conf import RATE
from servicekit.errors import DomainError
from servicekit.models import CacheEntry
from servicekit.prepared import Prepared

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Every PURGE_EVERY counts, a process deletes up to PURGE_BATCH rows whose windows no longer
# weigh: more than the counts create, so the table stays the size of its live keys.
PURGE_EVERY = 16
PURGE_BATCH = 256
_TABLE = CacheEntry._meta.db_table

# Rows roll over as they are counted: into the row's own window, or into a newer one (the
# row's counts become the previous window's when it was the one just before, else 0). A
# process whose clock is a little behind another's counts into the newer window it finds.
_COUNT_TEMPLATE = """
INSERT INTO {table} AS entry (cache_key, window_index, current_count, previous_count, expires)
SELECT k, max(w), count(*), 0, max(e)
FROM unnest({keys}::text[], {windows}::bigint[], {expires}::timestamptz[]) AS a(k, w, e)
GROUP BY k
ORDER BY k  -- every statement locks its keys in one order: no deadlock
ON CONFLICT (cache_key) DO UPDATE SET
    previous_count = CASE
        WHEN entry.window_index >= EXCLUDED.window_index THEN entry.previous_count
        WHEN entry.window_index = EXCLUDED.window_index - 1 THEN entry.current_count
        ELSE 0
    END,
    current_count = CASE
        WHEN entry.window_index >= EXCLUDED.window_index
            THEN entry.current_count + EXCLUDED.current_count
        ELSE EXCLUDED.current_count
    END,
    window_index = greatest(entry.window_index, EXCLUDED.window_index),
    expires = greatest(entry.expires, EXCLUDED.expires)
RETURNING cache_key, current_count, previous_count
"""
_COUNT = Prepared(
    "turnstile_rate_count",
    ["text[]", "bigint[]", "timestamptz[]"],
    _COUNT_TEMPLATE.format(table=_TABLE, keys="$1", windows="$2", expires="$3"),
)
_EXECUTE_COUNT = f"EXECUTE {_COUNT.name} (%(keys)s, %(windows)s, %(expires)s)"
_COUNT_SQL_BOUND = _COUNT_TEMPLATE.format(
    table=_TABLE, keys="%(keys)s", windows="%(windows)s", expires="%(expires)s"
)
# Skips rows a count holds, so it never waits for one.
_PURGE_SQL = f"""
DELETE FROM {_TABLE} WHERE cache_key IN (
    SELECT cache_key FROM {_TABLE} WHERE expires < %(now)s
    ORDER BY expires LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
"""  # noqa: S608 (the table's name, not input)
_counts = itertools.count(1)


def parse_rate(rate: str) -> tuple[int, int]:
    """("5/15m") -> (5, 900): the count and the window in seconds."""
    match = RATE.fullmatch(rate)
    if match is None:
        raise ValueError(f"not a rate: {rate!r}")
    count, multiple, unit = match.groups()
    return int(count), int(multiple or 1) * _UNIT_SECONDS[unit]


class RateLimited(DomainError):  # noqa: N818 (the name callers know)
    """429 with the whole seconds until one more attempt passes (`wait`, the Retry-After)."""

    status_code = 429
    default_detail = "Too many attempts."
    default_code = "rate-limited"

    def __init__(self, *, wait: int, detail: str | None = None) -> None:
        super().__init__(detail, retry_after=wait)
        self.wait = wait


@dataclass(frozen=True)
class Limit:
    """One attempt to count: against the setting `name`, for `key` (a user, an address)."""

    name: str
    key: str


def setting_name(action: str, scope: str) -> str:
    return f"RATE_LIMIT_{action}_PER_{scope}".upper()


def count(limits: Sequence[Limit], cursor: Any = None) -> list[RateLimited | None]:
    """Count every attempt in one statement; for each, None or the RateLimited to answer.

    Attempts with the same name and key are counted in the order given, so a batch is
    judged as if they had come one by one. A limit that is off is not counted. `cursor`
    (default: a new one on the default connection) must be in autocommit or in the caller's
    transaction; the statement holds the counters' row locks until that ends.
    """
    now = time.time()
    rates = {name: getattr(settings, name) for name in {limit.name for limit in limits}}
    counted = [limit for limit in limits if rates[limit.name] is not None]
    if not counted:
        return [None] * len(limits)
    keys, indexes, expires, windows = [], [], [], []
    for limit in counted:
        cap, period = parse_rate(rates[limit.name])
        digest = hashlib.sha256(limit.key.encode()).hexdigest()[:32]
        index = int(now // period)  # of the current fixed window
        keys.append(f"ratelimit:{limit.name.lower()}:{period}:{digest}")
        indexes.append(index)
        # The row weighs until the end of the window after this one.
        expires.append(datetime.fromtimestamp((index + 2) * period, tz=UTC))
        windows.append(_Window(cap=cap, period=period, elapsed=now - index * period))
    params: dict[str, Any] = {"keys": keys, "windows": indexes, "expires": expires}
    if cursor is None:
        with connection.cursor() as own:
            rows = _run(own, params, now)
    else:
        rows = _run(cursor, params, now)
    totals = {key: (total, before) for key, total, before in rows}
    # The n-th of this statement's attempts on a key is number (total - attempts + n).
    seen = Counter(keys)
    verdicts: dict[int, RateLimited | None] = {}
    for position, (key, window) in enumerate(zip(keys, windows, strict=True)):
        total, before = totals[key]
        number = total - seen[key] + 1
        seen[key] -= 1
        verdicts[position] = window.judge(before=before, number=number, total=total)
    # Back to the caller's order, with None for the limits that are off.
    results: list[RateLimited | None] = []
    position = 0
    for limit in limits:
        if rates[limit.name] is None:
            results.append(None)
        else:
            results.append(verdicts[position])
            position += 1
    return results


def _run(cursor: Any, params: dict[str, Any], now: float) -> list[tuple[str, int, int]]:
    """The count's rows (key, attempts of its window, attempts of the window before).
    Prepared in a session in autocommit; inside a caller's transaction sent whole (a failed
    EXECUTE there would abort the caller's transaction)."""
    if connection.in_atomic_block:
        cursor.execute(_COUNT_SQL_BOUND, params)
    else:
        _COUNT.execute(cursor, _EXECUTE_COUNT, params)
    rows: list[tuple[str, int, int]] = cursor.fetchall()
    if next(_counts) % PURGE_EVERY == 0:
        purge(cursor, now=now)
    return rows


def purge(cursor: Any, *, now: float, limit: int = PURGE_BATCH) -> int:
    """Delete up to `limit` counters whose windows no longer weigh; how many."""
    cursor.execute(_PURGE_SQL, {"now": datetime.fromtimestamp(now, tz=UTC), "limit": limit})
    deleted: int = cursor.rowcount
    return deleted


@dataclass(frozen=True)
class _Window:
    cap: int
    period: int
    elapsed: float  # seconds into the current fixed window

    def estimate(self, *, before: int, current: int, elapsed: float) -> float:
        """Attempts within the last period: the previous window's, weighted by how much of it
        the last period still covers, plus the current window's."""
        return before * max(0.0, 1 - elapsed / self.period) + current

    def judge(self, *, before: int, number: int, total: int | None = None) -> RateLimited | None:
        """The `number`-th attempt of this window passes or not; if not, it waits until the
        window's count after this statement (`total`) leaves room for one more."""
        if self.estimate(before=before, current=number, elapsed=self.elapsed) <= self.cap:
            return None
        return _limited(self.wait(before=before, current=max(number, total or 0)))

    def wait(self, *, before: int, current: int) -> float:
        """Seconds until one more attempt passes (this refused one counts, as it did)."""
        room = self.cap - 1  # what the last period may hold before the next attempt
        left = self.period - self.elapsed
        if current <= room and before > 0:
            # Within this window, once the previous one weighs little enough.
            needed = self.period * (1 - (room - current) / before) - self.elapsed
            if needed < left:
                return max(0.0, needed)
        # In the next window, this one weighs as the previous: until it weighs little enough.
        if current <= room:
            return left
        return left + self.period * (1 - room / current)


def _limited(seconds_left: float) -> RateLimited:
    # Waiting Retry-After whole seconds is always enough: rounded up, never 0.
    seconds = max(1, math.ceil(seconds_left))
    return RateLimited(wait=seconds, detail=f"Too many attempts; retry in {seconds} s.")


def rate_limit(*, action: str, scope: str, key: str) -> None:
    """Count one attempt at `action` by `key` against RATE_LIMIT_<ACTION>_PER_<SCOPE>;
    past the limit, raise 429 with the seconds until the window ends (Retry-After)."""
    (limited,) = count([Limit(setting_name(action, scope), key)])
    if limited is not None:
        raise limited


def rate_limit_all(*, action: str, keys: dict[str, str]) -> None:
    """Count one attempt at `action` in every scope at once ({"user": id, "address": ip}),
    in one statement; the first limit passed is raised."""
    limits = [Limit(setting_name(action, scope), key) for scope, key in keys.items()]
    for limited in count(limits):
        if limited is not None:
            raise limited
