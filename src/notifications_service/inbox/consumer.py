"""Durable JetStream pull consumers that hand each message to a handler, exactly once in effect.

For every message:

1. decode the envelope and its data into the model of its type (`servicekit.messages`); a
   message that is not an envelope, or whose data does not match its model, is poison and
   goes straight to the dead letters;
2. in one database transaction, claim the message id for this consumer (`ProcessedMessage`,
   unique) and run the handler; a claim that finds the id already there does nothing;
3. only after the commit, ack the message.

A crash anywhere before the ack makes JetStream redeliver after `ack_wait`; the claim makes
the second run a no-op if the first one committed. A handler that keeps failing is retried
with a growing delay (nak with delay) and, at the `max_deliver`-th delivery, recorded in
`DeadLetter` with its error and terminated, so it is neither lost nor retried forever.
Database outages are not the message's fault: they never dead-letter a message.

Each consumer deletes its processed-message ids older than
`PROCESSED_MESSAGE_RETENTION_SECONDS`, a step of its rounds (servicekit.retention). The
retention must outlive every redelivery, so it starts with a warning when it is shorter
than the stream keeps messages.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from django.db import InterfaceError, OperationalError, connection
from nats.aio.msg import Msg
from nats.js import api

from notifications_service.inbox.services import (
    Handler,
    dead_letter_record,
    message_handle,
    processed_messages_prune,
)
from servicekit.bus import (
    BusUnavailableError,
    SyncBus,
    SyncPullSubscription,
    backoff_delay,
    stream_config,
)
from servicekit.messages import IncomingEnvelope, PoisonMessageError, decode_envelope
from servicekit.retention import Pruner, retention
from servicekit.workers import Worker

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsumerSpec:
    """One purpose: a durable consumer, the message types it reads, and its handler."""

    name: str
    durable: str
    types: tuple[str, ...]  # subject patterns below the prefix: "user.>", "booking.>"
    handler: Handler


@dataclass(frozen=True)
class ConsumerOptions:
    batch: int = 50
    fetch_timeout: float = 0.5  # the idle wait: a stop is seen within half a second
    ack_wait: float = 30.0
    max_deliver: int = 5
    retry_initial: float = 1.0
    retry_max: float = 60.0


def handle_envelope(spec: ConsumerSpec, envelope: IncomingEnvelope) -> bool:
    """Run the handler once per (consumer, message). False if it had already run."""
    return message_handle(consumer=spec.name, handler=spec.handler, envelope=envelope)


class ConsumerWorker(Worker):
    name = "consume_events"
    idle_interval = 0.0  # the fetch itself waits for messages
    backoff_initial = 0.2
    backoff_max = 5.0
    outages: ClassVar[Mapping[type[Exception], str]] = {
        BusUnavailableError: "bus unavailable",
        TimeoutError: "bus timeout",
    }

    def __init__(self, bus: SyncBus, spec: ConsumerSpec, options: ConsumerOptions) -> None:
        self.bus = bus
        self.spec = spec
        self.options = options
        self.label = f"consumer {spec.name}"
        self.handled = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self._subscription: SyncPullSubscription | None = None
        self.pruner = Pruner(
            "processed message ids",
            lambda limit: processed_messages_prune(consumer=spec.name, limit=limit),
        )

    def consumer_config(self) -> api.ConsumerConfig:
        subjects = [self.bus.config.subject_for(pattern) for pattern in self.spec.types]
        config = api.ConsumerConfig(
            durable_name=self.spec.durable,
            ack_policy=api.AckPolicy.EXPLICIT,
            deliver_policy=api.DeliverPolicy.ALL,
            ack_wait=self.options.ack_wait,
            # Unlimited on the server: the dead-letter decision is ours, made with the error.
            max_deliver=-1,
            max_ack_pending=max(1000, self.options.batch * 4),
        )
        if len(subjects) == 1:
            config.filter_subject = subjects[0]
        else:
            config.filter_subjects = subjects
        return config

    def subscription(self) -> SyncPullSubscription:
        if self._subscription is None:
            self._subscription = self.bus.pull_subscribe(
                durable=self.spec.durable, config=self.consumer_config()
            )
        return self._subscription

    def process(self, subscription: SyncPullSubscription, msg: Msg) -> None:
        deliveries = msg.metadata.num_delivered or 1
        sequence = msg.metadata.sequence.stream if msg.metadata.sequence else None
        try:
            envelope = decode_envelope(msg.data)
        except PoisonMessageError as exc:
            self._dead_letter(
                subscription,
                msg,
                str(exc),
                deliveries,
                sequence,
                message_id=str(exc.message_id or ""),
                message_type=exc.message_type,
            )
            return
        except Exception:  # a parsing bug must not wedge the stream: dead-letter the message
            self._dead_letter(subscription, msg, traceback.format_exc(), deliveries, sequence)
            return
        try:
            handled = handle_envelope(self.spec, envelope)
        except (OperationalError, InterfaceError) as exc:
            # The database is away: not the message's fault, never a dead letter.
            logger.warning("%s: database error on %s: %s", self.spec.name, envelope.type, exc)
            connection.close()
            subscription.nak(msg, delay=self._retry_delay(deliveries))
            return
        except Exception:
            error = traceback.format_exc()
            if deliveries >= self.options.max_deliver:
                self._dead_letter(subscription, msg, error, deliveries, sequence, envelope=envelope)
            else:
                delay = self._retry_delay(deliveries)
                logger.warning(
                    "%s: handler failed on %s %s (delivery %d), retry in %.1fs:\n%s",
                    self.spec.name,
                    envelope.type,
                    envelope.id,
                    deliveries,
                    delay,
                    error,
                )
                subscription.nak(msg, delay=delay)
            return
        subscription.ack(msg)
        if handled:
            self.handled += 1
        else:
            self.duplicates += 1

    def _retry_delay(self, deliveries: int) -> float:
        return backoff_delay(
            deliveries, initial=self.options.retry_initial, maximum=self.options.retry_max
        )

    def _dead_letter(
        self,
        subscription: SyncPullSubscription,
        msg: Msg,
        error: str,
        deliveries: int,
        sequence: int | None,
        *,
        envelope: IncomingEnvelope | None = None,
        message_id: str = "",
        message_type: str = "",
    ) -> None:
        dead_letter_record(
            consumer=self.spec.name,
            subject=msg.subject,
            payload=msg.data,
            error=error,
            deliveries=deliveries,
            stream_sequence=sequence,
            message_id=str(envelope.id) if envelope else message_id,
            message_type=envelope.type if envelope else message_type,
        )
        self.dead_lettered += 1
        logger.error(
            "%s: message %s (stream seq %s) dead-lettered after %d deliveries",
            self.spec.name,
            msg.subject,
            sequence,
            deliveries,
        )
        subscription.term(msg)

    def run_once(self) -> int:
        """Fetch and process one batch; the number of messages seen."""
        subscription = self.subscription()
        messages = subscription.fetch(self.options.batch, self.options.fetch_timeout)
        for msg in messages:
            try:
                self.process(subscription, msg)
            except Exception:
                # Even recording its failure failed (a dead letter the database refused, an
                # ack the broker lost): this message comes back later, the batch goes on.
                logger.exception("%s: message %s could not be processed", self.spec.name, msg)
                self._nak_quietly(subscription, msg)
        return len(messages)

    def _nak_quietly(self, subscription: SyncPullSubscription, msg: Msg) -> None:
        deliveries = msg.metadata.num_delivered or 1
        try:
            subscription.nak(msg, delay=self._retry_delay(deliveries))
        except Exception as exc:  # unacked, it is redelivered after ack_wait all the same
            logger.warning("%s: nak failed: %s", self.spec.name, exc)

    # The loop (servicekit.workers) ----------------------------------------------------------

    def round(self) -> bool:
        seen = self.run_once()
        self.pruner.run(self)
        return seen > 0

    def round_failed(self, exc: Exception, failures: int) -> None:
        if not self.is_outage(exc):
            self._subscription = None  # subscribe again: it may be what broke

    def started(self) -> None:
        logger.info(
            "consumer %s started (durable %s, %s)",
            self.spec.name,
            self.spec.durable,
            ", ".join(self.spec.types),
        )
        kept = retention("PROCESSED_MESSAGE_RETENTION_SECONDS", 35 * 24 * 3600)
        redelivered_until = stream_config(self.bus.config).max_age or 0
        if kept.total_seconds() <= redelivered_until:
            logger.warning(
                "consumer %s: processed message ids are kept %ds, the stream keeps messages "
                "%ds: a message redelivered after its id was pruned is handled twice",
                self.spec.name,
                kept.total_seconds(),
                redelivered_until,
            )

    def stopped(self) -> None:
        logger.info(
            "consumer %s stopped: %d handled, %d duplicates, %d dead letters",
            self.spec.name,
            self.handled,
            self.duplicates,
            self.dead_lettered,
        )


def run_consumers(
    bus: SyncBus, specs: Sequence[ConsumerSpec], options: ConsumerOptions, stop: threading.Event
) -> list[ConsumerWorker]:
    """One thread per consumer (each with its own database connection) until `stop` is set."""
    workers = [ConsumerWorker(bus, spec, options) for spec in specs]
    threads = [
        threading.Thread(target=worker.run, args=(stop,), name=f"consumer-{worker.spec.name}")
        for worker in workers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return workers
