"""Statements a hot path sends many times a second, prepared once per database session.

Parsing, analysing and rewriting a statement of several CTEs costs PostgreSQL about as much
as running it. A `Prepared` statement is sent with `PREPARE` the first time a session needs
it, then run by `EXECUTE`; PostgreSQL chooses between a generic plan and one per call as
usual, and nothing is forced. A generic plan is made once for the session, with the
statistics of that moment: a statement that may settle on one must be right whatever its
tables held then (a plan made while a table was empty may read it whole once it is not); the
rate-limit count reaches its table only through ON CONFLICT's arbiter index. The booking
batch does not: planned while `bookings` and `events` looked nearly empty, its generic plan
scans both sequentially (seen with 200,000 bookings stored and no ANALYZE since), until
autovacuum's ANALYZE of the grown table invalidates it and the next batch plans again. A
known gap, for a young database's first large sale.

A session can lose it (a pooler's `DISCARD ALL`), or a migration can change a table it was
planned for: the statement is prepared again and run once more. Either error comes before
anything was written. `PREPARE` is not undone by a rollback, so the bookkeeping here cannot
disagree with the session.
"""

from __future__ import annotations

import weakref
from typing import Any

import psycopg
from django.db import DatabaseError, ProgrammingError
from django.db.backends.utils import CursorWrapper
from psycopg import errors


class Prepared:
    """`name` prepared with parameter `types` (SQL type names) as `sql` ($1, $2... for the
    parameters)."""

    def __init__(self, name: str, types: list[str], sql: str) -> None:
        self.name = name
        self.statement = f"PREPARE {name} ({', '.join(types)}) AS {sql}"
        self._prepared_on: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()

    def execute(self, cursor: CursorWrapper | psycopg.Cursor[Any], sql: str, params: Any) -> None:
        """Run `sql` (which names this statement in an `EXECUTE`) on `cursor`, a
        client-side-binding cursor in autocommit, preparing the statement first if its
        session does not have it."""
        raw: psycopg.Connection[Any] = getattr(cursor, "cursor", cursor).connection
        for attempt in (1, 2):
            if raw not in self._prepared_on:
                self._prepare(cursor)
                self._prepared_on.add(raw)
            try:
                cursor.execute(sql, params)
            except DatabaseError as exc:
                stale = exc.__cause__
                if attempt == 2 or not isinstance(
                    stale, errors.InvalidSqlStatementName | errors.FeatureNotSupported
                ):
                    raise
                if isinstance(stale, errors.FeatureNotSupported):
                    cursor.execute(f"DEALLOCATE {self.name}")
                self._prepared_on.discard(raw)
                continue
            return

    def forget(self, raw: psycopg.Connection[Any]) -> None:
        """Take `raw` for a session without the statement (a test's way to reach the
        already-prepared path)."""
        self._prepared_on.discard(raw)

    def _prepare(self, cursor: CursorWrapper | psycopg.Cursor[Any]) -> None:
        try:
            cursor.execute(self.statement)
        except ProgrammingError as exc:
            # Already in the session (handed over by a pooler, say): replace it with this text.
            if not isinstance(exc.__cause__, errors.DuplicatePreparedStatement):
                raise
            cursor.execute(f"DEALLOCATE {self.name}")
            cursor.execute(self.statement)
