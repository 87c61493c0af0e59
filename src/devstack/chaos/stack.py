"""The fault suite's stack: every process of the system, supervised, with handles for faults.

One embedded PostgreSQL (its own folder under the work folder) holds the three services'
databases; a three-node NATS JetStream cluster carries the events on a three-replica stream.
Beside them run users (one gunicorn), booking (two gunicorn instances on two ports, as two
machines behind a balancer would), notifications (one gunicorn), the users and booking
relays, the booking sweeper, the notifications consumer and dispatcher, the SMTP sink and
the webhook receiver. A supervisor thread restarts whatever dies, however often (the nemesis
kills on purpose), and every process writes to its own file under `logs/`.

The timings are short (holds of 20 s, an ack wait of 5 s, a sweep every second) so that a
fault matters within the minutes a run lasts; `topology.settings` records them.

The nemesis acts through the handles here: processes by name (kill, pause, resume, their
pids and gunicorn's worker pids), PostgreSQL stopped at once and started again, NATS nodes
killed, started and paused, and the SMTP sink's and webhook receiver's control switches.
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO, TypeVar

import psutil

from devstack.chaos.receiver import UP, write_control
from devstack.chaos.topology import Topology
from devstack.fuzz import isolated_env
from devstack.nats import NatsCluster, healthy
from devstack.paths import free_port
from devstack.postgres import EmbeddedPostgres
from devstack.process import Child, GaveUp, RestartPolicy, Supervisor
from devstack.services import Service, available_services
from devstack.stack import manage_argv, migrate, seed, server_argv

T = TypeVar("T")

BOOKING_INSTANCES = 2
WORKERS_PER_SERVER = 2

# The knobs every service runs with (each service reads the ones it knows).
SETTINGS: dict[str, str] = {
    "NATS_STREAM_REPLICAS": "3",
    "BOOKING_HOLD_SECONDS": "20",
    "BOOKING_SWEEP_INTERVAL_SECONDS": "1",
    "PAYMENT_PENDING_TIMEOUT_SECONDS": "5",
    "PAYMENT_PENDING_HOLD_GRACE_SECONDS": "10",
    "NOTIFICATIONS_CONSUMER_ACK_WAIT_SECONDS": "5",
    "DELIVERY_RETRY_BASE_SECONDS": "0.5",
    "DELIVERY_RETRY_MAX_SECONDS": "5",
    "DELIVERY_LEASE_SECONDS": "15",
    "EMAIL_TIMEOUT": "5",
    "EMAIL_MAX_ATTEMPTS": "60",
    "WEBHOOK_TIMEOUT_SECONDS": "3",
    "WEBHOOK_DEADLINE_SECONDS": "5",
    "WEBHOOK_MAX_ATTEMPTS": "60",
    "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
    "DB_STATEMENT_TIMEOUT_MS": "10000",
    # Every client is 127.0.0.1: limits per address are off (isolated_env), per user generous.
    "RATE_LIMIT_BOOKING_PER_USER": "600/m",
    "RATE_LIMIT_PAYMENT_PER_USER": "600/m",
    "RATE_LIMIT_LOGIN_PER_ACCOUNT": "10000/h",
    "RATE_LIMIT_PASSWORD_CHECK_PER_USER": "10000/h",
}

# A nemesis kills on purpose, so no crash loop is the child's fault: never give up, and come
# back quickly (a backoff that grew to 30 s would leave a process down most of a short run).
RESTART_POLICY = RestartPolicy(
    first_delay=0.5, max_delay=4.0, stable_after=10.0, burst=1_000_000, interval=60.0
)


class StackError(RuntimeError):
    """The stack could not start, or did not become healthy in time."""


class ChaosStack:
    """Start with `with ChaosStack(workdir, seed=S) as stack:`; everything stops at the end.

    `start` must run on a thread that outlives the stack (the main thread): children are
    told to end with the thread that started them (devstack.process). Restarts, and NATS
    nodes started again, run on the stack's own supervisor thread for the same reason.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        seed: int,
        settings: dict[str, str] | None = None,
        policy: RestartPolicy = RESTART_POLICY,
    ) -> None:
        self.workdir = workdir.resolve()
        self.seed = seed
        self.settings = {**SETTINGS, **(settings or {})}
        self.logs_dir = self.workdir / "logs"
        self.mail_dir = self.workdir / "mail"
        self.mail_control = self.workdir / "mail.control"
        self.webhook_control = self.workdir / "webhook.control"
        self.webhook_log = self.workdir / "webhooks.jsonl"
        self.postgres = EmbeddedPostgres(self.workdir / "postgres")
        self.nats = NatsCluster(self.workdir / "nats", size=3, logs_dir=self.logs_dir)
        self.supervisor = Supervisor(policy, out=self._log_file("supervisor"))
        self.ports: dict[str, int] = {}
        self.database_urls: dict[str, str] = {}
        self.accounts: list[dict[str, Any]] = []
        self.gave_up: GaveUp | None = None
        self._services = {service.name: service for service in available_services()}
        self._paused: set[str] = set()
        self._lock = threading.Lock()
        self._tasks: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> ChaosStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 120.0) -> ChaosStack:
        started = time.monotonic()
        for folder in (self.logs_dir, self.mail_dir):
            folder.mkdir(parents=True, exist_ok=True)
        for control in (self.mail_control, self.webhook_control):
            write_control(control, UP)
        self.postgres.start()
        postgres_log = self.log_path("postgres")
        if not postgres_log.is_symlink():
            postgres_log.symlink_to(self.postgres.pgdata / "log")
        self.database_urls = {
            name: self.postgres.ensure_database(service.database)
            for name, service in self._services.items()
        }
        self.nats.start()
        self.ports = {name: free_port() for name in [*self.server_names, "mail", "webhook"]}
        envs = self._service_envs()
        for name, service in self._services.items():
            migrate(service, envs[name])
        context = seed(list(self._services.values()), envs)
        self.accounts = context.get("users", {}).get("accounts", [])
        for child in self._children(envs):
            self.supervisor.start(child)
        self._thread = threading.Thread(target=self._supervise, name="chaos-supervisor")
        self._thread.start()
        self.wait_healthy(max(10.0, timeout - (time.monotonic() - started)))
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(10)
        for child in self.supervisor.children:
            child.signal_group(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        self.supervisor.stop(timeout=15)
        self.nats.stop()
        if not self.postgres.running() and self.postgres.pgdata.exists():
            with contextlib.suppress(Exception):
                self.postgres.start_again()  # so that stop() below finds it and stops it
        self.postgres.stop()

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            try:
                self.supervisor.poll()
            except GaveUp as exc:
                self.gave_up = exc
                self.supervisor.log(str(exc))
                return
            self._run_tasks()
            self._stopping.wait(0.2)
        self._run_tasks()

    def _run_tasks(self) -> None:
        while True:
            try:
                task, future = self._tasks.get_nowait()
            except queue.Empty:
                return
            try:
                future.set_result(task())
            except BaseException as exc:
                future.set_exception(exc)

    def on_supervisor(self, task: Callable[[], T], timeout: float = 60.0) -> T:
        """Run `task` on the supervisor thread (anything it starts lives as long as the stack)."""
        if self._thread is None or not self._thread.is_alive():
            return task()
        future: Future[T] = Future()
        self._tasks.put((task, future))
        return future.result(timeout)

    # -- what runs ------------------------------------------------------------------------

    @property
    def server_names(self) -> list[str]:
        """The gunicorn instances: users, booking-1 .. booking-N, notifications."""
        return ["users", *self.booking_names, "notifications"]

    @property
    def booking_names(self) -> list[str]:
        return [f"booking-{number}" for number in range(1, BOOKING_INSTANCES + 1)]

    @property
    def worker_names(self) -> list[str]:
        """The background processes: relays, sweeper, consumer, dispatcher."""
        return [
            f"{service.name}-{worker.name}"
            for service in self._services.values()
            for worker in service.workers
        ]

    def base_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def _service_envs(self) -> dict[str, dict[str, str]]:
        secret_key = secrets.token_urlsafe(48)
        envs: dict[str, dict[str, str]] = {}
        for name, service in self._services.items():
            env = isolated_env(
                service,
                database_url=self.database_urls[name],
                nats_url=self.nats.url,
                secret_key=secret_key,
                users_url=self.base_url("users"),
                mail_port=self.ports["mail"],
                mail_dir=self.mail_dir,
            )
            env.update(self.settings)
            envs[name] = env
        return envs

    def _service_of(self, server: str) -> Service:
        return self._services[server.split("-")[0]]

    def _children(self, envs: dict[str, dict[str, str]]) -> list[Child]:
        python = sys.executable
        plain = dict(os.environ, PYTHONUNBUFFERED="1")
        children = [
            self._child(
                "mail",
                [python, "-m", "devstack.mailsink", "--port", str(self.ports["mail"]),
                 "--dir", str(self.mail_dir), "--control", str(self.mail_control)],
                plain,
            ),
            self._child(
                "webhook",
                [python, "-m", "devstack.chaos.receiver", "--port", str(self.ports["webhook"]),
                 "--log", str(self.webhook_log), "--control", str(self.webhook_control)],
                plain,
            ),
        ]  # fmt: skip
        for name in self.server_names:
            service = self._service_of(name)
            argv = server_argv(service, WORKERS_PER_SERVER, host="127.0.0.1", port=self.ports[name])
            children.append(self._child(name, argv, envs[service.name]))
        for service in self._services.values():
            for worker in service.workers:
                argv = manage_argv(service, *worker.command)
                children.append(
                    self._child(f"{service.name}-{worker.name}", argv, envs[service.name])
                )
        return children

    def _child(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        return Child(name, argv, env, out=self._log_file(name))

    def _log_file(self, name: str) -> TextIO:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        return self.log_path(name).open("a", buffering=1, encoding="utf-8")

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    # -- handles for the nemesis ----------------------------------------------------------

    @property
    def processes(self) -> dict[str, Child]:
        return {child.name: child for child in self.supervisor.children}

    def pid(self, name: str) -> int | None:
        return self.processes[name].pid

    def worker_pids(self, name: str) -> list[int]:
        """The gunicorn workers of a server (the children of its master)."""
        pid = self.pid(name)
        if pid is None:
            return []
        try:
            return sorted(child.pid for child in psutil.Process(pid).children())
        except psutil.Error:
            return []

    def kill(self, name: str) -> int | None:
        """SIGKILL a process and whatever it started (a server's workers); it is restarted."""
        child = self.processes[name]
        pid = child.pid
        with self._lock:
            self._paused.discard(name)
        child.signal_group(signal.SIGKILL)
        return pid

    def kill_worker(self, name: str, pid: int) -> None:
        """SIGKILL one worker of a server; its master starts another."""
        if pid in self.worker_pids(name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def pause(self, name: str) -> None:
        """SIGSTOP a process with whatever it started; `resume` undoes it."""
        with self._lock:
            self._paused.add(name)
        self.processes[name].signal_group(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        with self._lock:
            self._paused.discard(name)
        self.processes[name].signal_group(signal.SIGCONT)

    @property
    def paused(self) -> set[str]:
        with self._lock:
            return set(self._paused)

    def postgres_stop(self) -> None:
        """`pg_ctl stop -m immediate`: every connection cut, no checkpoint (as a crash)."""
        self.postgres.stop_immediately()

    def postgres_start(self) -> None:
        if not self.postgres.running():
            self.postgres.start_again()

    def postgres_running(self) -> bool:
        return self.postgres.running()

    def nats_kill(self, index: int) -> None:
        self.nats.nodes[index].resume()
        self.nats.nodes[index].kill()

    def nats_start(self, index: int) -> None:
        node = self.nats.nodes[index]
        if not node.running():
            self.on_supervisor(node.start)

    def nats_pause(self, index: int) -> None:
        self.nats.nodes[index].pause()

    def nats_resume(self, index: int) -> None:
        self.nats.nodes[index].resume()

    def set_mail(self, state: str) -> None:
        """`up`, `down` or `slow:<seconds>` (see devstack.chaos.receiver)."""
        write_control(self.mail_control, state)

    def set_webhook(self, state: str) -> None:
        write_control(self.webhook_control, state)

    # -- health ---------------------------------------------------------------------------

    def not_ready(self) -> list[str]:
        """What is not ready now: a server, a NATS node, a receiver, a stopped process."""
        failing = [name for name in self.server_names if not _ready(self.base_url(name))]
        if not self.postgres.running():
            failing.append("postgres")
        failing += [node.server_name for node in self.nats.nodes if not healthy(node)]
        if not _answers(f"{self.base_url('webhook')}/health"):
            failing.append("webhook")
        failing += [child.name for child in self.supervisor.children if not child.alive()]
        failing += sorted(self.paused)
        return sorted(set(failing))

    def wait_healthy(self, timeout: float) -> float:
        """Wait until everything is ready; the seconds it took. StackError names what is not."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            if self.gave_up is not None:
                raise StackError(str(self.gave_up))
            failing = self.not_ready()
            if not failing:
                return time.monotonic() - started
            if time.monotonic() > deadline:
                raise StackError(
                    f"not ready after {timeout:g}s: {', '.join(failing)} (logs in {self.logs_dir})"
                )
            time.sleep(0.5)

    @property
    def topology(self) -> Topology:
        return Topology(
            workdir=self.workdir,
            users_url=self.base_url("users"),
            booking_urls=[self.base_url(name) for name in self.booking_names],
            notifications_url=self.base_url("notifications"),
            database_urls=dict(self.database_urls),
            nats_urls=self.nats.urls,
            mail_dir=self.mail_dir,
            webhook_url=f"{self.base_url('webhook')}/hook",
            webhook_log=self.webhook_log,
            accounts=list(self.accounts),
            settings=dict(self.settings),
        )


def _answers(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _ready(base_url: str) -> bool:
    return _answers(f"{base_url}/health/ready")
