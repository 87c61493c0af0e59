"""The outbox relay: publishes committed outbox rows to JetStream, then marks them sent.

- Claims pending rows with `SELECT ... FOR UPDATE SKIP LOCKED`, so any number of relay
  processes can run at once: each row is held by one relay at a time, and a relay that dies
  releases its rows when its connection closes.
- Publishes with `Nats-Msg-Id` = message id and marks a row sent only after the stream's
  acknowledgement. A crash between the two republishes the row; the broker's
  de-duplication window drops the copy.
- While NATS is away it keeps the rows pending, records the error on the row it could not
  publish, and retries with capped exponential backoff. The outbox grows; nothing is lost.
- A message the broker refuses while it is up (too large, say), or one that cannot even be
  encoded, fails alone: its error and next attempt time go on its row, the others are
  published meanwhile, and after `max_attempts` it is given up (`failed_at`) for a person
  to look at.
- Wakes on `LISTEN outbox` (sent by `outbox_emit` at commit), with a polling fallback when
  the notification is missed or the listening connection is down. After a notification it
  lingers (`linger`, 20 ms by default) so that the messages of a busy moment go out
  together: in a flash sale that is one relay transaction and one pipelined publish per few
  dozen messages instead of one per committed batch.
- Deletes the messages it published more than `OUTBOX_SENT_RETENTION_SECONDS` ago, a step
  of its rounds at most once a `PRUNE_INTERVAL_SECONDS` (servicekit.retention): the outbox
  stays the size of its retention, and a failed pruning never holds up publishing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, NamedTuple

import msgspec
import psycopg
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone

from servicekit.bus import BusUnavailableError, OutgoingMessage, SyncBus, backoff_delay
from servicekit.messages import encode_envelope
from servicekit.outbox.health import check_outbox_lag
from servicekit.outbox.models import OutboxMessage
from servicekit.outbox.services import (
    NOTIFY_CHANNEL,
    StoredMessage,
    outbox_envelope,
    outbox_sent_prune,
)
from servicekit.retention import Pruner
from servicekit.workers import Worker

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RelayOptions:
    batch_size: int = 100
    poll_interval: float = 5.0
    publish_timeout: float = 5.0
    backoff_initial: float = 0.2
    backoff_max: float = 10.0
    lag_log_interval: float = 30.0
    linger: float = 0.02
    # A message that fails on its own: backoff between its attempts, and when to give up
    # (the defaults keep trying for about two hours).
    retry_initial: float = 1.0
    retry_max: float = 600.0
    max_attempts: int = 20


_TABLE = OutboxMessage._meta.db_table
# The due messages, oldest first (the partial index of unsent messages), each held by this
# relay until its transaction ends; `data` as text, decoded by msgspec rather than by the
# ORM's JSON field (Django's rows were a sixth of the relay's CPU in a flash sale).
_DUE_SQL = f"""
    SELECT id, message_id, type, producer, version, occurred_at, data::text, attempts
    FROM {_TABLE}
    WHERE sent_at IS NULL AND failed_at IS NULL
      AND (next_attempt_at IS NULL OR next_attempt_at <= %(now)s)
    ORDER BY id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
"""  # noqa: S608 (the table's name, not input)
_SENT_SQL = f"""
    UPDATE {_TABLE} SET sent_at = %(now)s, attempts = attempts + 1, last_error = ''
    WHERE id = ANY(%(ids)s)
"""  # noqa: S608


class PendingMessage(NamedTuple):
    """A due row, as the relay reads it."""

    pk: int
    message_id: uuid.UUID
    type: str
    producer: str
    version: int
    occurred_at: datetime
    data_json: str
    attempts: int

    @property
    def data(self) -> Any:
        return msgspec.json.decode(self.data_json)


def envelope_bytes(row: StoredMessage) -> bytes:
    return encode_envelope(outbox_envelope(row))


class OutboxRelay(Worker):
    name = "outbox_relay"
    label = "outbox relay"
    outages: ClassVar[Mapping[type[Exception], str]] = {BusUnavailableError: "bus unavailable"}

    def __init__(self, bus: SyncBus, options: RelayOptions | None = None) -> None:
        self.bus = bus
        self.options = options or RelayOptions()
        self.published_total = 0
        self._listen: psycopg.Connection[Any] | None = None
        self._last_lag_log = 0.0
        self._last_unsent = -1  # unknown: the first check logs
        self._listen_retry_at = 0.0
        self.idle_interval = self.options.poll_interval
        self.backoff_initial = self.options.backoff_initial
        self.backoff_max = self.options.backoff_max
        self.pruner = Pruner("sent messages", lambda limit: outbox_sent_prune(limit=limit))

    # One batch -----------------------------------------------------------------------------

    def relay_batch(self) -> int:
        """Publish up to `batch_size` due messages; the number published.

        Raises `BusUnavailableError` when the broker is away; the messages acknowledged before
        it are marked sent all the same. A message that fails while the broker is there is
        rescheduled (or given up) on its own row and raises nothing.
        """
        now = timezone.now()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_DUE_SQL, {"now": now, "limit": self.options.batch_size})
            rows = [PendingMessage._make(row) for row in cursor.fetchall()]
            if not rows:
                return 0
            outgoing: list[tuple[PendingMessage, OutgoingMessage]] = []
            failed: list[tuple[PendingMessage, str]] = []
            for row in rows:
                try:
                    message = OutgoingMessage(
                        message_type=row.type,
                        payload=envelope_bytes(row),
                        msg_id=str(row.message_id),
                    )
                except Exception as exc:
                    logger.exception("outbox relay: message %s cannot be encoded", row.message_id)
                    failed.append((row, f"{type(exc).__name__}: {exc}"))
                    continue
                outgoing.append((row, message))
            # Pipelined: the batch is written in order and its acknowledgements awaited
            # together, so a broker outage costs one timeout per batch, not one per message.
            results = (
                self.bus.publish_many(
                    [message for _, message in outgoing], timeout=self.options.publish_timeout
                )
                if outgoing
                else []
            )
            sent_ids = [
                row.pk
                for (row, _), result in zip(outgoing, results, strict=True)
                if not isinstance(result, BusUnavailableError)
            ]
            refused = [
                (row, result)
                for (row, _), result in zip(outgoing, results, strict=True)
                if isinstance(result, BusUnavailableError)
            ]
            if sent_ids:
                cursor.execute(_SENT_SQL, {"now": timezone.now(), "ids": sent_ids})
            outage = bool(refused) and not sent_ids and not self._broker_answers()
            if outage:
                # Not the messages' fault: they keep their turn, the loop backs off.
                for row, refusal in refused:
                    OutboxMessage.objects.filter(pk=row.pk).update(
                        attempts=F("attempts") + 1, last_error=str(refusal)[:2000]
                    )
            else:
                failed += [(row, str(refusal)) for row, refusal in refused]
            for row, error in failed:
                self._message_failed(row, error, now=now)
        self.published_total += len(sent_ids)
        if outage:
            raise refused[0][1]
        return len(sent_ids)

    def _broker_answers(self) -> bool:
        """Whether the broker is there, when none of a batch got through."""
        try:
            self.bus.connect(self.options.publish_timeout)
            self.bus.call(self.bus.js.account_info(), timeout=self.options.publish_timeout)
        except Exception:
            return False
        return True

    def _message_failed(self, row: PendingMessage, error: str, *, now: datetime) -> None:
        attempts = row.attempts + 1
        error = error.replace("\x00", "\\x00")[:2000]
        if attempts >= self.options.max_attempts:
            logger.error(
                "outbox relay: message %s (%s) given up after %d attempts: %s",
                row.message_id,
                row.type,
                attempts,
                error,
            )
            changes: dict[str, Any] = {"failed_at": now}
        else:
            delay = backoff_delay(
                attempts, initial=self.options.retry_initial, maximum=self.options.retry_max
            )
            logger.warning(
                "outbox relay: message %s (%s) failed (attempt %d), retry in %.1fs: %s",
                row.message_id,
                row.type,
                attempts,
                delay,
                error,
            )
            changes = {"next_attempt_at": now + timedelta(seconds=delay)}
        OutboxMessage.objects.filter(pk=row.pk).update(
            attempts=attempts, last_error=error, **changes
        )

    def drain(self) -> int:
        """Publish until nothing is pending (raises `BusUnavailableError` on an outage)."""
        total = 0
        while True:
            published = self.relay_batch()
            total += published
            if published < self.options.batch_size:
                return total

    # The loop (servicekit.workers) ----------------------------------------------------------

    def started(self) -> None:
        logger.info(
            "outbox relay started (stream %s, servers %s)",
            self.bus.config.stream,
            ",".join(self.bus.config.servers),
        )

    def round(self) -> bool:
        published = self.relay_batch()
        self._log_lag()
        self.pruner.run(self)
        return published >= self.options.batch_size  # more may be waiting

    def round_failed(self, exc: Exception, failures: int) -> None:
        if isinstance(exc, BusUnavailableError):
            self._log_lag(force=failures == 1)
        elif isinstance(exc, DatabaseError):
            self._close_listen()

    def stopped(self) -> None:
        self._close_listen()
        logger.info("outbox relay stopped; published %d messages", self.published_total)

    def wait_for_work(self, stop: threading.Event, timeout: float) -> bool:
        """Whether a NOTIFY came within `timeout`. After one it lingers, so that what commits
        meanwhile goes out in the same batch."""
        listen = self._ensure_listen()
        if listen is None:
            stop.wait(timeout)
            return False
        notified = False
        try:
            for _notify in listen.notifies(timeout=timeout, stop_after=1):
                notified = True
            if notified:
                if self.options.linger > 0:
                    stop.wait(self.options.linger)
                # Whatever was notified meanwhile is in the batch that follows.
                for _pending in listen.notifies(timeout=0):
                    pass
        except psycopg.Error as exc:
            logger.info("outbox relay: LISTEN connection lost (%s); polling", exc)
            self._close_listen()
        return notified

    def _ensure_listen(self) -> psycopg.Connection[Any] | None:
        if self._listen is not None and not self._listen.closed:
            return self._listen
        if time.monotonic() < self._listen_retry_at:
            return None  # polling until the next try
        try:
            params = connection.get_connection_params()
            params.pop("cursor_factory", None)
            self._listen = psycopg.connect(**params, autocommit=True)
            self._listen.execute(f"LISTEN {NOTIFY_CHANNEL}")
        except psycopg.Error as exc:
            logger.info("outbox relay: cannot LISTEN (%s); polling", exc)
            self._listen = None
            self._listen_retry_at = time.monotonic() + self.options.poll_interval
        return self._listen

    def _close_listen(self) -> None:
        if self._listen is not None:
            with contextlib.suppress(psycopg.Error):
                self._listen.close()
            self._listen = None

    def _log_lag(self, *, force: bool = False) -> None:
        """Every `lag_log_interval` while messages wait, once when the backlog is cleared."""
        now = time.monotonic()
        if not force and now - self._last_lag_log < self.options.lag_log_interval:
            return
        try:
            lag = check_outbox_lag().data
        except DatabaseError:
            return
        self._last_lag_log = now
        if not force and lag["unsent"] == 0 and self._last_unsent == 0:
            return
        self._last_unsent = int(lag["unsent"])
        logger.info(
            "outbox lag: %s unsent, oldest %.1fs; %d published by this relay",
            lag["unsent"],
            lag["oldest_unsent_age_seconds"],
            self.published_total,
        )
