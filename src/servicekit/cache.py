"""A cache in the service's own PostgreSQL whose `add` and `incr` are atomic.

Django's DatabaseCache reads a row and then writes it, so two processes incrementing the same
counter at once both write the same number, and one count is lost. Rate limits
(django-ratelimit) count with `add` then `incr`, and a burst is exactly when they must not
lose counts. Here `add` is one INSERT ... ON CONFLICT statement and `incr` holds the row
lock from the read to the write. The table is `servicekit.models.CacheEntry` (created by
migrate).
"""

from __future__ import annotations

import base64
import pickle
from datetime import UTC, datetime
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router, transaction
from django.utils import timezone

# Expired rows removed by each `add`: more than one add creates, so the table stays small
# without a separate sweeper.
PURGE_BATCH = 16


class AtomicDatabaseCache(DatabaseCache):
    def __init__(self, table: str, params: dict[str, Any]) -> None:
        super().__init__(table, params)
        self.table_name = table

    def _encode(self, value: Any) -> str:
        return base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")

    def _expires(self, timeout: float | None) -> datetime:
        seconds = self.get_backend_timeout(timeout)
        if seconds is None:
            return datetime.max.replace(tzinfo=UTC)
        return datetime.fromtimestamp(seconds, tz=UTC)

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        key = self.make_and_validate_key(key, version=version)
        connection = connections[router.db_for_write(self.cache_model_class)]
        table = connection.ops.quote_name(self.table_name)
        now = timezone.now()
        # The table name comes from settings and is quoted; every value is a parameter.
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE cache_key IN (SELECT cache_key FROM {table}"  # noqa: S608
                " WHERE expires < %s ORDER BY expires LIMIT %s FOR UPDATE SKIP LOCKED)",
                [now, PURGE_BATCH],
            )
            # Inserts the key, or takes over an expired row of it; a live row stays as it is.
            cursor.execute(
                f"INSERT INTO {table} AS entry (cache_key, value, expires)"  # noqa: S608
                " VALUES (%s, %s, %s) ON CONFLICT (cache_key) DO UPDATE"
                " SET value = EXCLUDED.value, expires = EXCLUDED.expires"
                " WHERE entry.expires < %s RETURNING 1",
                [key, self._encode(value), self._expires(timeout), now],
            )
            return cursor.fetchone() is not None

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> Any:
        key = self.make_and_validate_key(key, version=version)
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        table = connection.ops.quote_name(self.table_name)
        with transaction.atomic(using=db), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT value FROM {table} WHERE cache_key = %s AND expires >= %s"  # noqa: S608
                " FOR UPDATE",
                [key, timezone.now()],
            )
            row = cursor.fetchone()
            if row is None:
                raise ValueError(f"Key '{key}' not found.")
            # Written by this class from a value the service chose, never from a request.
            value = pickle.loads(base64.b64decode(row[0].encode())) + delta  # noqa: S301
            cursor.execute(
                f"UPDATE {table} SET value = %s WHERE cache_key = %s",  # noqa: S608
                [self._encode(value), key],
            )
        return value
