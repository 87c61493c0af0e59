"""Per-process batching of ticket holds, one queue per event: pure threading.

Concurrent asks for the same event share one trip to the database. The first ask to arrive
leads: it takes whatever queued, hands the batch to the executor, and wakes everyone with
their outcome; the asks that arrived meanwhile form the next batch, led by the first of
them. Nothing waits on purpose: a batch is whatever queued during the previous one.

An event the executor found sold out is remembered for as long as it says, so the stampede
that follows a sell-out is answered from memory.

The executor is given (event id, asks) and returns one outcome per ask; this module knows
nothing of databases or HTTP, so it is tested with a fake executor.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

OutcomeT = TypeVar("OutcomeT")


@dataclass(frozen=True)
class SoldOut:
    """Too few tickets left for the ask: `available` were."""

    available: int


def _locked() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(eq=False)  # compared by identity
class Ask:
    """One buyer's request, waiting for its batch."""

    tickets: int
    user_id: uuid.UUID
    address: str
    # Held until the ask is woken, once: to lead the next batch, or with its outcome. A bare
    # lock, released in C, costs the waking leader much less than Event.set().
    wake: threading.Lock = field(default_factory=_locked, repr=False)
    lead: bool = False
    done: bool = False
    outcome: object = None


@dataclass(frozen=True)
class Decided(Generic[OutcomeT]):
    """What the executor made of a batch: one outcome per ask, in order, and how many
    seconds the event may be answered sold out from memory (None: not sold out)."""

    outcomes: Sequence[OutcomeT]
    sold_out_for: float | None = None


Executor = Callable[[int, list[Ask]], Decided[OutcomeT]]


@dataclass
class _Queue:
    running: bool = False
    waiting: list[Ask] = field(default_factory=list)


class TicketBatcher(Generic[OutcomeT]):
    """`book()` returns the ask's outcome, SoldOut from memory, or the exception the
    executor raised for the whole batch."""

    def __init__(
        self, execute: Executor[OutcomeT], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._execute = execute
        self._clock = clock
        self._lock = threading.Lock()
        self._queues: dict[int, _Queue] = {}
        self._sold_out_until: dict[int, float] = {}

    def book(
        self, *, event_id: int, tickets: int, user_id: uuid.UUID, address: str
    ) -> OutcomeT | SoldOut | Exception:
        until = self._sold_out_until.get(event_id)
        if until is not None:
            if until > self._clock():
                return SoldOut(available=0)
            self._sold_out_until.pop(event_id, None)
        ask = Ask(tickets=tickets, user_id=user_id, address=address)
        with self._lock:
            queue = self._queues.setdefault(event_id, _Queue())
            queue.waiting.append(ask)
            if not queue.running:
                queue.running = ask.lead = True
        if not ask.lead:
            ask.wake.acquire()
            if ask.done:
                return ask.outcome  # type: ignore[return-value]  # set by the leader
        self._lead(event_id, queue)
        return ask.outcome  # type: ignore[return-value]

    def _lead(self, event_id: int, queue: _Queue) -> None:
        with self._lock:
            batch, queue.waiting = queue.waiting, []
        try:
            decided = self._execute(event_id, batch)
            if len(decided.outcomes) != len(batch):
                raise RuntimeError(f"{len(decided.outcomes)} outcomes for {len(batch)} asks")
            for ask, outcome in zip(batch, decided.outcomes, strict=True):
                ask.outcome = outcome
            if decided.sold_out_for is not None:
                self._sold_out_until[event_id] = self._clock() + decided.sold_out_for
        except Exception as exc:
            logger.exception("batched booking of event %s failed", event_id)
            for ask in batch:
                ask.outcome = exc
        finally:
            successor: Ask | None = None
            with self._lock:
                if queue.waiting:
                    successor = queue.waiting[0]
                    successor.lead = True
                else:
                    queue.running = False
                    if self._queues.get(event_id) is queue:
                        del self._queues[event_id]
            # The successor first: its batch is what the database waits for next.
            if successor is not None:
                successor.wake.release()
            for ask in batch:
                ask.done = True
                ask.wake.release()
