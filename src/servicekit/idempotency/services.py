"""`Idempotency-Key` for unsafe requests, in Stripe's "atomic phases".

A key's recorded result commits in the same transaction as the change it stands for, so
a retry either replays the stored result or finds that nothing happened: a crash, a lost
connection or a 500 anywhere in between can no longer leave a change without its key, or
free a key whose change committed.

- An all-database request (a booking) is one phase: the change and its answer commit
  together (`idempotency_key_store` inside the view's transaction).
- A request that calls out in the middle (a payment asks its provider) records a
  *recovery point* with its first phase's change (`idempotency_key_checkpoint`: the
  payment row and the key commit together). A retry that finds a recovery point without an
  answer resumes from it instead of starting again.

While a request with a key runs, it holds a PostgreSQL advisory lock on the key; a
concurrent duplicate that cannot take it gets 409. The lock lives in the request's
connection, so a process that dies (or a database that restarts) releases it at once: a
retry never waits out a timer for a request that cannot answer any more.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.utils import timezone

from servicekit import parsers
from servicekit.errors import Conflict, Problem, Unprocessable
from servicekit.idempotency.models import IdempotencyKey
from servicekit.retention import PRUNE_LIMIT, delete_older_than

MAX_KEY_LENGTH = 255
# How long the previous version of this module held a reserved key for its running request.
LEGACY_IN_FLIGHT = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class Replay:
    """The stored answer of an earlier request with the key."""

    status: int
    body: Any
    content_type: str


@dataclass(frozen=True)
class Resume:
    """An earlier request with the key got past its first phase and left no answer (it
    died, its last phase failed, or its outcome is still unknown): carry on from its
    recovery point."""

    record: IdempotencyKey


@dataclass(frozen=True)
class Scope:
    owner: str
    endpoint: str
    key: str
    fingerprint: str

    @property
    def lock_id(self) -> int:
        """A signed 64-bit advisory-lock id for the key (a collision only costs a 409)."""
        digest = hashlib.sha256(f"{self.owner}\0{self.endpoint}\0{self.key}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)


def request_fingerprint(body: bytes) -> str:
    """A hash of the request body; JSON is canonicalised so key order and spacing don't count."""
    try:
        # The service's parser: a body it refuses (too deep, say) is hashed as it is.
        document = parsers.loads(body)
    except Problem:
        return hashlib.sha256(body).hexdigest()
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


def _ttl() -> dt.timedelta:
    return dt.timedelta(seconds=getattr(settings, "IDEMPOTENCY_KEY_TTL_SECONDS", 24 * 3600))


def validate_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
        raise Unprocessable(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
            code="idempotency-key-invalid",
        )


def _in_use() -> Conflict:
    return Conflict(
        "A request with this Idempotency-Key is still being processed; retry later.",
        code="idempotency-key-in-use",
    )


def idempotency_key_lock(scope: Scope, *, session: bool = False) -> None:
    """Take the key's advisory lock, or raise 409 while another request holds it.

    By default the lock ends with the current transaction (call it inside one); a
    `session` lock lasts until `idempotency_key_unlock` or the end of the connection.
    """
    function = "pg_try_advisory_lock" if session else "pg_try_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s)", [scope.lock_id])
        (taken,) = cursor.fetchone()
    if not taken:
        raise _in_use()


def idempotency_key_unlock(scope: Scope) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s)", [scope.lock_id])


def idempotency_key_find(scope: Scope) -> Replay | Resume | None:
    """What an earlier request with the key left (call it holding the key's lock): its
    answer, its recovery point, or nothing (the key is free: run the request).

    Raises 422 when the key was used with another body.
    """
    now = timezone.now()
    existing = IdempotencyKey.objects.filter(
        owner=scope.owner, endpoint=scope.endpoint, key=scope.key
    ).first()
    if existing is None:
        return None
    if existing.expires_at <= now:
        existing.delete()
        return None
    if existing.request_fingerprint != scope.fingerprint:
        raise Unprocessable(
            "This Idempotency-Key was used with a different request body.",
            code="idempotency-key-reused",
        )
    if existing.response_status is not None:
        return Replay(
            status=existing.response_status,
            body=existing.response_body,
            content_type=existing.response_content_type,
        )
    if existing.recovery_point is not None:
        return Resume(existing)
    # Neither an answer nor a recovery point: a reservation by an older version of this
    # module, which reserved keys ahead of the change and took no advisory lock. While a
    # release rolls out, its request may still be running: in use for as long as that
    # version waited for one, then abandoned (its process died).
    if existing.created_at > now - LEGACY_IN_FLIGHT:
        raise _in_use()
    existing.delete()
    return None


def idempotency_key_checkpoint(scope: Scope, recovery_point: Any) -> None:
    """Record the key's recovery point; call it in the transaction of the change it names."""
    now = timezone.now()
    IdempotencyKey.objects.update_or_create(
        owner=scope.owner,
        endpoint=scope.endpoint,
        key=scope.key,
        defaults={"recovery_point": recovery_point},
        create_defaults={
            "request_fingerprint": scope.fingerprint,
            "recovery_point": recovery_point,
            "created_at": now,
            "expires_at": now + _ttl(),
        },
    )


_STORE_SQL = f"""
INSERT INTO {IdempotencyKey._meta.db_table} AS kept
    (owner, endpoint, key, request_fingerprint, response_status, response_body,
     response_content_type, recovery_point, created_at, expires_at)
VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, NULL, %s, %s)
ON CONFLICT (owner, endpoint, key) DO UPDATE SET
    response_status = EXCLUDED.response_status,
    response_body = EXCLUDED.response_body,
    response_content_type = EXCLUDED.response_content_type
WHERE kept.response_status IS NULL
"""  # noqa: S608 (the table name comes from the model)


def idempotency_key_store(scope: Scope, *, status: int, body: Any, content_type: str) -> None:
    """Record the key's answer; call it in the transaction of the change it answers for (or
    on its own when nothing changed). One statement. The first answer stands: a request
    that lost its lock (its connection was replaced mid-request) never overwrites the answer
    a retry recorded meanwhile."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _STORE_SQL,
            [
                scope.owner,
                scope.endpoint,
                scope.key,
                scope.fingerprint,
                status,
                json.dumps(body, cls=DjangoJSONEncoder),
                content_type,
                now,
                now + _ttl(),
            ],
        )


def idempotency_keys_purge(*, now: dt.datetime | None = None, limit: int = PRUNE_LIMIT) -> int:
    """Delete keys past their `expires_at`, oldest first, at most `limit` in short batches
    (servicekit.retention): a backlog never becomes one DELETE the statement timeout kills."""
    return delete_older_than(
        IdempotencyKey.objects.all(),
        field="expires_at",
        cutoff=now or timezone.now(),
        limit=limit,
    )
