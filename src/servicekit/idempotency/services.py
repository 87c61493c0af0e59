from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from servicekit import parsers
from servicekit.idempotency.models import IdempotencyKey
from servicekit.problems import Conflict, Problem, Unprocessable

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Replay:
    status: int
    body: Any
    content_type: str


def request_fingerprint(body: bytes) -> str:
    """A hash of the request body; JSON is canonicalised so key order and spacing don't count."""
    try:
        # The service's parser: a body it refuses (too deep, say) is hashed as it is.
        document = parsers.loads(body)
    except Problem:
        return hashlib.sha256(body).hexdigest()
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()


def _in_flight_limit() -> dt.timedelta:
    """A request still unanswered after this long died with its process; its key is free."""
    return dt.timedelta(seconds=getattr(settings, "IDEMPOTENCY_IN_FLIGHT_SECONDS", 60))


def _ttl() -> dt.timedelta:
    return dt.timedelta(seconds=getattr(settings, "IDEMPOTENCY_KEY_TTL_SECONDS", 24 * 3600))


def idempotency_key_begin(
    *, owner: str, endpoint: str, key: str, fingerprint: str
) -> IdempotencyKey | Replay:
    """Reserve the key for this request, or say what the earlier request with it answered.

    Returns the reserved row (the caller runs the request, then calls
    `idempotency_key_complete` or `idempotency_key_abandon`) or a `Replay` of the stored
    response. Raises 422 when the key was used with another body, 409 while the first request
    with the key is still running. Runs in its own transaction so the reservation is visible to
    concurrent duplicates at once.
    """
    if not key or len(key) > MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
        raise Unprocessable(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
            code="idempotency-key-invalid",
        )
    now = timezone.now()
    for _ in range(2):
        try:
            with transaction.atomic():
                return IdempotencyKey.objects.create(
                    owner=owner,
                    endpoint=endpoint,
                    key=key,
                    request_fingerprint=fingerprint,
                    created_at=now,
                    expires_at=now + _ttl(),
                )
        except IntegrityError:
            existing = IdempotencyKey.objects.filter(
                owner=owner, endpoint=endpoint, key=key
            ).first()
            if existing is None:
                continue  # abandoned meanwhile: take it
            if existing.expires_at <= now:
                IdempotencyKey.objects.filter(pk=existing.pk, expires_at__lte=now).delete()
                continue
            if existing.request_fingerprint != fingerprint:
                raise Unprocessable(
                    "This Idempotency-Key was used with a different request body.",
                    code="idempotency-key-reused",
                ) from None
            status = existing.response_status
            if status is None and existing.created_at <= now - _in_flight_limit():
                # The first request's process died before answering: let this retry run.
                IdempotencyKey.objects.filter(
                    pk=existing.pk, response_status__isnull=True, created_at=existing.created_at
                ).delete()
                continue
            if status is None:
                raise Conflict(
                    "A request with this Idempotency-Key is still being processed; retry later.",
                    code="idempotency-key-in-use",
                ) from None
            return Replay(
                status=status,
                body=existing.response_body,
                content_type=existing.response_content_type,
            )
    raise Conflict(
        "A request with this Idempotency-Key is still being processed; retry later.",
        code="idempotency-key-in-use",
    )


def idempotency_key_complete(
    *, record: IdempotencyKey, status: int, body: Any, content_type: str
) -> None:
    record.response_status = status
    record.response_body = body
    record.response_content_type = content_type
    record.save(update_fields=["response_status", "response_body", "response_content_type"])


def idempotency_key_abandon(*, record: IdempotencyKey) -> None:
    """Forget the reservation (the request failed in a way a retry may fix)."""
    IdempotencyKey.objects.filter(pk=record.pk).delete()


def idempotency_keys_purge(*, now: dt.datetime | None = None) -> int:
    deleted, _ = IdempotencyKey.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted
