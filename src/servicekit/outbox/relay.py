"""The outbox relay: publishes committed outbox rows to JetStream, then marks them sent.

- Claims pending rows with `SELECT ... FOR UPDATE SKIP LOCKED`, so any number of relay
  processes can run at once: each row is held by one relay at a time, and a relay that dies
  releases its rows when its connection closes.
- Publishes with `Nats-Msg-Id` = event id and marks a row sent only after the stream's
  acknowledgement. A crash between the two republishes the row; the broker's
  de-duplication window drops the copy.
- While NATS is away it keeps the rows pending, records the error on the row it could not
  publish, and retries with capped exponential backoff. The outbox grows; nothing is lost.
- Wakes on `LISTEN outbox` (sent by `outbox_emit` at commit), with a polling fallback when
  the notification is missed or the listening connection is down. After a notification it
  lingers (`linger`, 20 ms by default) so that the events of a busy moment go out together:
  in a flash sale that is one relay transaction and one pipelined publish per few dozen
  events instead of one per committed batch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone

from servicekit.bus import BusUnavailableError, OutgoingMessage, SyncBus, backoff_delay
from servicekit.outbox.health import check_outbox_lag
from servicekit.outbox.models import OutboxEvent
from servicekit.outbox.services import NOTIFY_CHANNEL, outbox_envelope

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


def envelope_bytes(event: OutboxEvent) -> bytes:
    return json.dumps(outbox_envelope(event), cls=DjangoJSONEncoder).encode()


class OutboxRelay:
    def __init__(self, bus: SyncBus, options: RelayOptions | None = None) -> None:
        self.bus = bus
        self.options = options or RelayOptions()
        self.published_total = 0
        self._listen: psycopg.Connection[Any] | None = None
        self._last_lag_log = 0.0
        self._last_unsent = -1  # unknown: the first check logs

    # One batch -----------------------------------------------------------------------------

    def relay_batch(self) -> int:
        """Publish up to `batch_size` pending events; the number published.

        Raises `BusUnavailableError` when the broker did not acknowledge an event; the events
        acknowledged before it are marked sent all the same.
        """
        with transaction.atomic():
            events = list(
                OutboxEvent.objects.select_for_update(skip_locked=True)
                .filter(sent_at__isnull=True)
                .order_by("id")[: self.options.batch_size]
            )
            if not events:
                return 0
            # Pipelined: the batch is written in order and its acknowledgements awaited
            # together, so a broker outage costs one timeout per batch, not one per event.
            results = self.bus.publish_many(
                [
                    OutgoingMessage(
                        event_type=event.type,
                        payload=envelope_bytes(event),
                        msg_id=str(event.event_id),
                    )
                    for event in events
                ],
                timeout=self.options.publish_timeout,
            )
            sent_ids = [
                event.pk
                for event, result in zip(events, results, strict=True)
                if not isinstance(result, BusUnavailableError)
            ]
            failures = [
                (event, result)
                for event, result in zip(events, results, strict=True)
                if isinstance(result, BusUnavailableError)
            ]
            if sent_ids:
                OutboxEvent.objects.filter(pk__in=sent_ids).update(
                    sent_at=timezone.now(), attempts=F("attempts") + 1, last_error=""
                )
            for event, error in failures:
                OutboxEvent.objects.filter(pk=event.pk).update(
                    attempts=F("attempts") + 1, last_error=str(error)[:2000]
                )
        self.published_total += len(sent_ids)
        if failures:
            raise failures[0][1]
        return len(sent_ids)

    def drain(self) -> int:
        """Publish until nothing is pending (raises `BusUnavailableError` on an outage)."""
        total = 0
        while True:
            published = self.relay_batch()
            total += published
            if published < self.options.batch_size:
                return total

    # The loop --------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        failures = 0
        logger.info(
            "outbox relay started (stream %s, servers %s)",
            self.bus.config.stream,
            ",".join(self.bus.config.servers),
        )
        while not stop.is_set():
            try:
                published = self.relay_batch()
            except BusUnavailableError as exc:
                failures += 1
                delay = backoff_delay(
                    failures, initial=self.options.backoff_initial, maximum=self.options.backoff_max
                )
                logger.warning("outbox relay: bus unavailable (%s); retry in %.1fs", exc, delay)
                self._log_lag(force=failures == 1)
                stop.wait(delay)
                continue
            except DatabaseError as exc:
                failures += 1
                delay = backoff_delay(
                    failures, initial=self.options.backoff_initial, maximum=self.options.backoff_max
                )
                logger.warning("outbox relay: database error (%s); retry in %.1fs", exc, delay)
                connection.close()
                self._close_listen()
                stop.wait(delay)
                continue
            if failures:
                logger.info("outbox relay: publishing again after %d failed attempts", failures)
                failures = 0
            self._log_lag()
            if published >= self.options.batch_size:
                continue  # more may be waiting
            self._wait_for_work(stop)
        self._close_listen()
        logger.info("outbox relay stopped; published %d events", self.published_total)

    def _wait_for_work(self, stop: threading.Event) -> None:
        listen = self._ensure_listen()
        if listen is None:
            stop.wait(self.options.poll_interval)
            return
        deadline = time.monotonic() + self.options.poll_interval
        try:
            # Returns after the first NOTIFY (and the linger), after the polling interval, or
            # soon after `stop`.
            notified = False
            while not stop.is_set() and not notified:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                for _notify in listen.notifies(timeout=min(remaining, 0.5), stop_after=1):
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

    def _ensure_listen(self) -> psycopg.Connection[Any] | None:
        if self._listen is not None and not self._listen.closed:
            return self._listen
        try:
            params = connection.get_connection_params()
            params.pop("cursor_factory", None)
            self._listen = psycopg.connect(**params, autocommit=True)
            self._listen.execute(f"LISTEN {NOTIFY_CHANNEL}")
        except psycopg.Error as exc:
            logger.info("outbox relay: cannot LISTEN (%s); polling", exc)
            self._listen = None
        return self._listen

    def _close_listen(self) -> None:
        if self._listen is not None:
            with contextlib.suppress(psycopg.Error):
                self._listen.close()
            self._listen = None

    def _log_lag(self, *, force: bool = False) -> None:
        """Every `lag_log_interval` while events wait, once when the backlog is cleared."""
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
