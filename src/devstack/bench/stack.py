"""The benchmark's stack: fresh embedded PostgreSQL and NATS in a temporary folder, and the
service processes started on it, each with the kind its CPU time is reported under."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.nats import EmbeddedNats
from devstack.paths import free_port
from devstack.postgres import EmbeddedPostgres, running_postmaster
from devstack.process import popen_owned
from devstack.reaper import reaped

POSTGRES_KIND = "postgres"
NATS_KIND = "nats"


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def http_json(
    method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None
) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{method} {url}: {exc.code} {exc.read()[:500]!r}") from exc


def wait_live(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health/live", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@dataclass
class Stack:
    workdir: Path
    postgres: EmbeddedPostgres
    nats: EmbeddedNats
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    # What each spawned process is, by pid: its CPU time (and its children's) is that kind's.
    kinds: dict[int, str] = field(default_factory=dict)

    def service_env(self, package: str, database: str) -> dict[str, str]:
        return {
            **self.env,
            "DJANGO_SETTINGS_MODULE": os.environ.get(
                "BENCH_SETTINGS_" + package, f"{package}.settings"
            ),
            "DATABASE_URL": self.postgres.url(database),
        }

    def manage(self, package: str, database: str, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", package, *args],
            env=self.service_env(package, database),
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout

    def spawn(
        self, argv: list[str], env: dict[str, str], log_name: str, *, kind: str | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a process of the stack; `kind` (default: `log_name`) names its CPU time."""
        out = (self.workdir / f"{log_name}.log").open("wb")
        process = popen_owned(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.processes.append(process)
        self.kinds[process.pid] = kind or log_name
        return process

    def serve(
        self,
        package: str,
        database: str,
        *,
        workers: int,
        threads: int,
        server: str = "gunicorn",
        kind: str | None = None,
    ) -> str:
        """Start an instance of a service's web server; its base URL once it is live. Its
        CPU time counts as `kind`, by default "<service> web" (e.g. "booking web")."""
        port = free_port()
        if server == "granian":
            argv = [
                sys.executable, "-m", "granian", "--interface", "wsgi",
                "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
                "--blocking-threads", str(threads), "--backlog", "2048",
                "--log-level", "warning", "--no-access-log", f"{package}.wsgi:application",
            ]  # fmt: skip
        else:
            argv = [
                sys.executable, "-m", "gunicorn", f"{package}.wsgi:application",
                "--no-control-socket",
                "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
                "--worker-class", "gthread", "--threads", str(threads),
                "--backlog", "2048", "--keep-alive", "30", "--log-level", "warning",
            ]  # fmt: skip
        web = kind or f"{package.removesuffix('_service')} web"
        self.spawn(argv, self.service_env(package, database), f"{package}-{port}", kind=web)
        base = f"http://127.0.0.1:{port}"
        wait_live(base)
        return base

    def roots(self) -> dict[int, str]:
        """Every process the stack started, PostgreSQL's postmaster and the NATS server, by
        pid, with their kinds: the roots of the process trees whose CPU time is the stack's."""
        roots = {p.pid: self.kinds[p.pid] for p in self.processes if p.poll() is None}
        postmaster = running_postmaster(self.postgres.pgdata)
        if postmaster is not None:
            roots[postmaster.pid] = POSTGRES_KIND
        if self.nats.pid is not None:
            roots[self.nats.pid] = NATS_KIND
        return roots

    def stop(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextlib.contextmanager
def bench_stack() -> Iterator[Stack]:
    workdir = Path(tempfile.mkdtemp(prefix="turnstile-bench-"))
    with reaped(workdir):  # a killed run leaves no PostgreSQL (it daemonizes) nor folder
        yield from _bench_stack(workdir)


def _bench_stack(workdir: Path) -> Iterator[Stack]:
    postgres = EmbeddedPostgres(workdir / "postgres", ephemeral=True)
    nats = EmbeddedNats(workdir / "nats", ephemeral=True)
    stack: Stack | None = None
    try:
        postgres.start()
        nats.start()
        for name in ("users", "booking", "pgbench"):
            postgres.ensure_database(name)
        env = {
            **os.environ,
            "SECRET_KEY": secrets.token_urlsafe(48),
            "NATS_URL": nats.url,
            "PYTHONUNBUFFERED": "1",
            # Every buyer comes from 127.0.0.1: per-address limits would refuse all but the
            # first few. A load generator switches them off.
            "RATE_LIMIT_LOGIN_PER_ADDRESS": "off",
            "RATE_LIMIT_REGISTER_PER_ADDRESS": "off",
            "RATE_LIMIT_REFRESH_PER_ADDRESS": "off",
            "RATE_LIMIT_BOOKING_PER_ADDRESS": "off",
            "RATE_LIMIT_PAYMENT_PER_ADDRESS": "off",
            # Each connection books back to back as its customers in turn: dozens of holds a
            # second in the warm-up, far past a buyer's 30/m. Counted (the figure includes
            # the counting) but never reached.
            "RATE_LIMIT_BOOKING_PER_USER": "1000000/m",
        }
        stack = Stack(workdir, postgres, nats, env)
        yield stack
    finally:
        if stack is not None:
            stack.stop()
        nats.stop()
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)
