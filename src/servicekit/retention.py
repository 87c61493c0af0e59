"""Bounded growth: rows that have served their purpose are deleted by the worker that owns
them, a step of its rounds, with no cron and no other process.

- A `Pruner` is that step: due at most once per `PRUNE_INTERVAL_SECONDS` (a setting, one
  minute by default), run through `Worker.step`, so a failure is one logged line and the
  worker goes on with its real work; the step is tried again an interval later.
- One step deletes at most `limit` rows, in batches of `batch_size`, each batch its own
  short statement (and transaction) found through an index on the age column, oldest first:
  locks are brief and a backlog never becomes one huge DELETE that the statement timeout
  kills every time. A step that hit its limit is due again at once, so a backlog (a first
  run after an upgrade, a worker that was down) drains over consecutive rounds.

What each service keeps, for how long, and why: docs/operations/retention.md.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db.models import Model, QuerySet

from servicekit.workers import Worker

PRUNE_BATCH_SIZE = 2000
PRUNE_LIMIT = 20_000
DEFAULT_PRUNE_INTERVAL_SECONDS = 60.0


def retention(name: str, default_seconds: int) -> dt.timedelta:
    """The retention setting `name` (seconds) as a duration."""
    return dt.timedelta(seconds=float(getattr(settings, name, default_seconds)))


def delete_older_than(
    queryset: QuerySet[Any],
    *,
    field: str,
    cutoff: dt.datetime,
    limit: int = PRUNE_LIMIT,
    batch_size: int = PRUNE_BATCH_SIZE,
) -> int:
    """Delete the rows of `queryset` whose `field` is before `cutoff`, oldest first, at most
    `limit` of them in batches of at most `batch_size`; how many were deleted (rows that
    cascade with them not counted)."""
    model: type[Model] = queryset.model
    old = queryset.filter(**{f"{field}__lt": cutoff}).order_by(field)
    deleted = 0
    while deleted < limit:
        size = min(batch_size, limit - deleted)
        ids = list(old.values_list("pk", flat=True)[:size])
        if ids:
            model._base_manager.filter(pk__in=ids).delete()
        deleted += len(ids)
        if len(ids) < size:
            break
    return deleted


class Pruner:
    """One kind of row a worker deletes past its retention: `prune(limit)` deletes at most
    `limit` of them and says how many. Call `run(worker)` from the worker's round."""

    def __init__(
        self,
        what: str,
        prune: Callable[[int], int],
        *,
        interval: float | None = None,
        limit: int = PRUNE_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.prune = prune
        self.interval = (
            float(getattr(settings, "PRUNE_INTERVAL_SECONDS", DEFAULT_PRUNE_INTERVAL_SECONDS))
            if interval is None
            else interval
        )
        self.limit = limit
        self.clock = clock
        self.deleted_total = 0
        self._due_at = 0.0  # the first round prunes

    def due(self) -> bool:
        return self.clock() >= self._due_at

    def run(self, worker: Worker) -> int:
        """Prune if due, as a step of `worker` (a failure is logged, never raised); how many
        rows went."""
        if not self.due():
            return 0
        deleted = worker.step(f"pruning {self.what}", lambda: self.prune(self.limit), 0)
        self._due_at = self.clock() + (0.0 if deleted >= self.limit else self.interval)
        if deleted:
            self.deleted_total += deleted
            worker.log.info("%s: %d %s pruned", worker.label, deleted, self.what)
        return deleted
