"""The nemesis: a schedule of faults drawn from a seed, and the faults themselves.

`plan(seed, seconds, targets)` is a pure function of its arguments (random.Random(seed)), so
a run's faults replay from its seed. A fault starts every few seconds; those that last (a
pause, a database or broker node down, a receiver down or slow) end after their duration,
overlapping the next ones. Two rules keep the system able to recover, as production's would:
at most one PostgreSQL fault at a time, and at most one NATS node away at a time (two of
three stay, a majority, so the stream keeps its quorum). A target is never in two lasting
faults at once.

Kinds:
    kill-worker     SIGKILL one gunicorn worker of a server (its master starts another)
    kill            SIGKILL a whole process group: a server (master and workers), a relay,
                    the sweeper, the consumer, the dispatcher, a receiver (restarted by the
                    stack's supervisor)
    pause           SIGSTOP, then SIGCONT after longer than the consumer's ack wait
    postgres-stop   `pg_ctl stop -m immediate`, started again after a few seconds
    pg-terminate    pg_terminate_backend of a random part of the services' connections
    nats-kill       SIGKILL one NATS node, started again (same store) later
    nats-pause      SIGSTOP one NATS node (a minority partition), SIGCONT later
    mail-down, mail-slow, webhook-down, webhook-slow
                    the SMTP sink or the webhook receiver refuses (421 / 503) or answers late

`Nemesis(stack, history).run(schedule, stop_event)` carries a schedule out, writing each
fault's start and stop to the history; `heal()` undoes whatever is still in effect.
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol
from urllib.parse import urlsplit

import psycopg

logger = logging.getLogger(__name__)

KILL_WORKER = "kill-worker"
KILL = "kill"
PAUSE = "pause"
POSTGRES_STOP = "postgres-stop"
PG_TERMINATE = "pg-terminate"
NATS_KILL = "nats-kill"
NATS_PAUSE = "nats-pause"
MAIL_DOWN = "mail-down"
MAIL_SLOW = "mail-slow"
WEBHOOK_DOWN = "webhook-down"
WEBHOOK_SLOW = "webhook-slow"

# How often each kind is drawn, relative to the others.
WEIGHTS: dict[str, int] = {
    KILL_WORKER: 3,
    KILL: 6,
    PAUSE: 3,
    POSTGRES_STOP: 1,
    PG_TERMINATE: 2,
    NATS_KILL: 2,
    NATS_PAUSE: 1,
    MAIL_DOWN: 1,
    MAIL_SLOW: 1,
    WEBHOOK_DOWN: 1,
    WEBHOOK_SLOW: 1,
}
ALL_KINDS = tuple(WEIGHTS)

POSTGRES = "postgres"
MAIL = "mail"
WEBHOOK = "webhook"


@dataclass(frozen=True)
class Targets:
    """What a schedule may hit, by the names the stack gives them."""

    servers: tuple[str, ...]  # gunicorn instances (kill-worker, kill)
    booking: tuple[str, ...]  # the booking instances among them (drawn more often)
    workers: tuple[str, ...]  # relays, sweeper, consumer, dispatcher (kill)
    pausable: tuple[str, ...]  # processes a pause is drawn for
    receivers: tuple[str, ...] = (MAIL, WEBHOOK)  # killed too, now and then
    nats_nodes: int = 3
    ack_wait: float = 5.0  # the consumer's: every pause outlasts it
    kinds: tuple[str, ...] = ALL_KINDS

    @classmethod
    def of(cls, stack: Any, *, kinds: tuple[str, ...] = ALL_KINDS) -> Targets:
        """The targets of a devstack.chaos.stack.ChaosStack."""
        workers = tuple(stack.worker_names)
        booking = tuple(stack.booking_names)
        pausable = booking + tuple(
            name for name in workers if name.endswith(("-relay", "-consumer", "-dispatcher"))
        )
        return cls(
            servers=tuple(stack.server_names),
            booking=booking,
            workers=workers,
            pausable=pausable,
            nats_nodes=len(stack.nats.nodes),
            ack_wait=float(stack.settings["NOTIFICATIONS_CONSUMER_ACK_WAIT_SECONDS"]),
            kinds=kinds,
        )


@dataclass(frozen=True)
class Fault:
    at: float  # seconds from the start of the run
    kind: str
    target: str
    duration: float = 0.0  # 0: a moment (a kill); else when the fault is undone
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def until(self) -> float:
        return self.at + self.duration

    def describe(self) -> dict[str, Any]:
        return {"at": round(self.at, 3), "kind": self.kind, "target": self.target,
                "duration": round(self.duration, 3), **self.params}  # fmt: skip


def plan(
    seed: int, seconds: float, targets: Targets | Any, *, every: float = 4.0, settle: float = 0.0
) -> list[Fault]:
    """A fault about every `every` seconds; every one over by `seconds - settle`.

    `targets` may be a ChaosStack: its Targets are taken.
    """
    if not isinstance(targets, Targets):
        targets = Targets.of(targets)
    rng = random.Random(seed)  # noqa: S311  (a schedule that replays, not a secret)
    kinds = [kind for kind in targets.kinds if kind in WEIGHTS]
    # Kinds are dealt from a shuffled deck: first every kind once (a short run still sees
    # each of them), then decks holding each kind as often as its weight.
    deck = rng.sample(kinds, len(kinds))
    busy: dict[str, float] = {}  # a target, "postgres" or "nats" -> when its fault ends
    faults: list[Fault] = []
    at = every * rng.uniform(0.5, 1.5)
    while at < seconds - settle:
        for position in range(min(10, len(deck))):  # the next kind whose target is free
            fault = _draw(rng, deck[position], at, targets)
            if fault is None:
                continue
            guards = _guards(fault)
            if fault.until > seconds - settle or any(busy.get(g, 0.0) > at for g in guards):
                continue
            for guard in guards:
                busy[guard] = fault.until
            faults.append(fault)
            del deck[position]
            break
        if not deck:
            deck = [kind for kind in kinds for _ in range(WEIGHTS[kind])]
            rng.shuffle(deck)
        at += every * rng.uniform(0.5, 1.5)
    return faults


def _guards(fault: Fault) -> list[str]:
    """What the fault occupies while it lasts: its target, and the resource it stands for."""
    if fault.kind in (POSTGRES_STOP, PG_TERMINATE):
        return [POSTGRES]
    if fault.kind in (NATS_KILL, NATS_PAUSE):
        return ["nats"]
    if fault.kind in (MAIL_DOWN, MAIL_SLOW):
        return [MAIL]
    if fault.kind in (WEBHOOK_DOWN, WEBHOOK_SLOW):
        return [WEBHOOK]
    return [fault.target]


def _draw(rng: random.Random, kind: str, at: float, targets: Targets) -> Fault | None:
    if kind == KILL_WORKER:
        server = rng.choice(targets.booking * 2 + targets.servers)
        return Fault(at, kind, server, params={"worker": rng.randrange(1_000)})
    if kind == KILL:
        pool = targets.booking * 2 + targets.servers + targets.workers * 2 + targets.receivers
        return Fault(at, kind, rng.choice(pool))
    if kind == PAUSE:
        if not targets.pausable:
            return None
        return Fault(at, kind, rng.choice(targets.pausable), targets.ack_wait + rng.uniform(1, 5))
    if kind == POSTGRES_STOP:
        return Fault(at, kind, POSTGRES, rng.uniform(2, 6))
    if kind == PG_TERMINATE:
        return Fault(at, kind, POSTGRES, params={"fraction": round(rng.uniform(0.2, 0.8), 2),
                                                 "seed": rng.randrange(2**31)})  # fmt: skip
    if kind in (NATS_KILL, NATS_PAUSE):
        if targets.nats_nodes < 3:
            return None  # one node away would be a majority away
        node = rng.randrange(targets.nats_nodes)
        return Fault(at, kind, f"nats-{node}", rng.uniform(3, 10), {"node": node})
    if kind in (MAIL_DOWN, WEBHOOK_DOWN):
        return Fault(at, kind, MAIL if kind == MAIL_DOWN else WEBHOOK, rng.uniform(3, 10))
    if kind in (MAIL_SLOW, WEBHOOK_SLOW):
        # Some delays outlast the sender's timeout (5 s for mail, 3 s for webhooks): the
        # sender gives up on a message the receiver then accepts, and sends it again.
        delay = round(rng.uniform(1, 7), 1)
        target = MAIL if kind == MAIL_SLOW else WEBHOOK
        return Fault(at, kind, target, rng.uniform(4, 10), {"delay": delay})
    return None


class Recorder(Protocol):
    def nemesis(self, f: str, value: dict[str, Any] | None = None) -> None: ...


class Nemesis:
    """Carries out a schedule on a ChaosStack, writing every start and stop to the history."""

    def __init__(self, stack: Any, history: Recorder) -> None:
        self.stack = stack
        self.history = history
        self._lock = threading.Lock()  # a fault's start or stop, or a heal, one at a time
        self.done: list[Fault] = []
        self._lasting: list[Fault] = []  # started and not yet stopped

    def run(self, schedule: list[Fault], stop_event: threading.Event) -> None:
        """Start and stop each fault on time; when stop_event is set, heal and return."""
        started = time.monotonic()
        actions: list[tuple[float, int, Callable[[], None]]] = []
        for number, fault in enumerate(schedule):
            actions.append((fault.at, 2 * number, partial(self.start, fault)))
            if fault.duration:
                actions.append((fault.until, 2 * number + 1, partial(self.stop, fault)))
        heapq.heapify(actions)
        while actions:
            due, _order, action = actions[0]
            if stop_event.wait(max(0.0, started + due - time.monotonic())):
                break
            heapq.heappop(actions)
            action()
        self.heal()

    def start(self, fault: Fault) -> None:
        with self._lock:
            value: dict[str, Any] = {"target": fault.target, "phase": "start", **fault.params}
            if fault.duration:
                value["duration"] = round(fault.duration, 3)
            try:
                value.update(self._inflict(fault))
            except Exception as exc:
                logger.warning("nemesis: %s on %s failed: %s", fault.kind, fault.target, exc)
                value["error"] = f"{type(exc).__name__}: {exc}"
            self.history.nemesis(fault.kind, value)
            self.done.append(fault)
            if fault.duration:
                self._lasting.append(fault)
            else:
                self.history.nemesis(fault.kind, {"target": fault.target, "phase": "stop"})

    def stop(self, fault: Fault) -> None:
        with self._lock:
            if fault not in self._lasting:
                return  # healed already
            self._lasting.remove(fault)
            value: dict[str, Any] = {"target": fault.target, "phase": "stop"}
            try:
                self._undo(fault)
            except Exception as exc:
                logger.warning("nemesis: ending %s on %s failed: %s", fault.kind, fault.target, exc)
                value["error"] = f"{type(exc).__name__}: {exc}"
            self.history.nemesis(fault.kind, value)

    def _inflict(self, fault: Fault) -> dict[str, Any]:
        """Do the fault; what it hit (pids, connections), for the history."""
        stack = self.stack
        kind, target = fault.kind, fault.target
        if kind == KILL_WORKER:
            workers = stack.worker_pids(target)
            if not workers:
                return {"skipped": "no worker running"}
            pid = workers[fault.params["worker"] % len(workers)]
            stack.kill_worker(target, pid)
            return {"pid": pid}
        if kind == KILL:
            return {"pid": stack.kill(target)}
        if kind == PAUSE:
            stack.pause(target)
            return {"pid": stack.pid(target)}
        if kind == POSTGRES_STOP:
            stack.postgres_stop()
            return {}
        if kind == PG_TERMINATE:
            return self._terminate_backends(fault.params["fraction"], fault.params["seed"])
        if kind == NATS_KILL:
            stack.nats_kill(fault.params["node"])
            return {}
        if kind == NATS_PAUSE:
            stack.nats_pause(fault.params["node"])
            return {}
        if kind in (MAIL_DOWN, WEBHOOK_DOWN, MAIL_SLOW, WEBHOOK_SLOW):
            state = "down" if kind.endswith("-down") else f"slow:{fault.params['delay']}"
            (stack.set_mail if target == MAIL else stack.set_webhook)(state)
            return {}
        raise ValueError(f"unknown fault kind {kind!r}")

    def _undo(self, fault: Fault) -> None:
        stack = self.stack
        if fault.kind == PAUSE:
            stack.resume(fault.target)
        elif fault.kind == POSTGRES_STOP:
            stack.postgres_start()
        elif fault.kind == NATS_KILL:
            stack.nats_start(fault.params["node"])
        elif fault.kind == NATS_PAUSE:
            stack.nats_resume(fault.params["node"])
        elif fault.kind in (MAIL_DOWN, MAIL_SLOW):
            stack.set_mail("up")
        elif fault.kind in (WEBHOOK_DOWN, WEBHOOK_SLOW):
            stack.set_webhook("up")

    def _terminate_backends(self, fraction: float, seed: int) -> dict[str, Any]:
        if not self.stack.postgres_running():
            return {"skipped": "postgres is stopped"}
        databases = [urlsplit(url).path.lstrip("/") for url in self.stack.database_urls.values()]
        with psycopg.connect(self.stack.postgres.url("postgres"), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = ANY(%s) AND pid <> pg_backend_pid() ORDER BY pid",
                [databases],
            ).fetchall()
            pids = [row[0] for row in rows]
            rng = random.Random(seed)  # noqa: S311  (which connections, not a secret)
            chosen = sorted(rng.sample(pids, round(len(pids) * fraction)))
            for pid in chosen:
                conn.execute("SELECT pg_terminate_backend(%s)", [pid])
        return {"connections": len(pids), "terminated": len(chosen)}

    def heal(self) -> list[str]:
        """Undo every fault still in effect: resume, start, receivers up. Idempotent.

        Each fault cut short gets its `stop` in the history, marked `"healed": true`. A step
        that fails does not keep the others from running; what failed is returned.
        """
        stack = self.stack
        steps: list[tuple[str, Callable[[], None]]] = [
            *((f"resume {name}", partial(stack.resume, name)) for name in stack.processes),
            ("start postgres", stack.postgres_start),
        ]
        for index in range(len(stack.nats.nodes)):
            steps.append((f"resume nats-{index}", partial(stack.nats_resume, index)))
            steps.append((f"start nats-{index}", partial(stack.nats_start, index)))
        steps.append(("mail up", partial(stack.set_mail, "up")))
        steps.append(("webhook up", partial(stack.set_webhook, "up")))
        failed: list[str] = []
        with self._lock:
            for name, step in steps:
                try:
                    step()
                except Exception as exc:
                    logger.warning("nemesis: heal: %s failed: %s", name, exc)
                    failed.append(f"{name}: {type(exc).__name__}: {exc}")
            for fault in self._lasting:
                value = {"target": fault.target, "phase": "stop", "healed": True}
                self.history.nemesis(fault.kind, value)
            self._lasting.clear()
        return failed
