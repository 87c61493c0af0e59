"""`dev.py up`: the whole stack on one machine, data kept in `.data/`.

Supervised like production (docs/operations/supervision.md): a server or worker that dies
is restarted with backoff; one that keeps dying stops the stack with its last output. The
embedded PostgreSQL and nats-server are watched the same way (devstack.watched).
SIGTERM stops the stack as Ctrl-C does. If the stack itself is killed, its children get
SIGTERM from the kernel, the next start stops a nats-server this folder's pid file names,
and reuses the PostgreSQL still running on `.data/postgres`.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from devstack.nats import EmbeddedNats
from devstack.paths import DATA_DIR, port_in_use
from devstack.postgres import EmbeddedPostgres
from devstack.process import (
    COLORS,
    Child,
    GaveUp,
    Supervisor,
    ignore_stop_signals,
    stop_all,
    stop_on_signals,
)
from devstack.services import WEB_SERVICE, Service, available_services
from devstack.watched import WatchedNats, WatchedPostgres, WatchedServer

HOST = os.environ.get("TURNSTILE_HOST", "127.0.0.1")
NATS_PORT = 4222
MAIL_PORT = int(os.environ.get("TURNSTILE_MAIL_PORT", "1025"))
MAIL_DIR = DATA_DIR / "mail"


def load_dev_secrets(path: Path) -> dict[str, str]:
    """Development secrets, generated once and kept with the data (never committed)."""
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            if key and value:
                values[key] = value
    for name in ("SECRET_KEY", "SERVICE_TOKEN_SECRET"):
        values.setdefault(name, secrets.token_urlsafe(48))
    path.write_text("".join(f"{k}={v}\n" for k, v in sorted(values.items())))
    path.chmod(0o600)
    return values


def service_env(
    service: Service, *, database_url: str, nats_url: str, dev_secrets: dict[str, str]
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": service.settings_module,
            "DATABASE_URL": database_url,
            "NATS_URL": nats_url,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.setdefault("SECRET_KEY", dev_secrets["SECRET_KEY"])
    env.setdefault(
        "JWT_JWKS_URL", f"http://127.0.0.1:{service_port('users')}/.well-known/jwks.json"
    )
    env.setdefault("MAIL_DIR", str(MAIL_DIR))
    # Development mail goes to the stack's SMTP sink (see mail_sink below).
    env.setdefault("EMAIL_HOST", "127.0.0.1")
    env.setdefault("EMAIL_PORT", str(MAIL_PORT))
    env.setdefault("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")
    # The web pages call the APIs from 127.0.0.1 and pass the browser's address on: trusting
    # the loopback as a proxy keeps the APIs' per-address limits per person, not one budget
    # for everyone who uses the pages (a development stack only listens on the loopback).
    env.setdefault("TRUSTED_PROXIES", "127.0.0.1/32,::1/128")
    return env


def service_port(name: str) -> int:
    return next(s.port for s in available_services() if s.name == name)


def manage_argv(service: Service, *args: str) -> list[str]:
    return [sys.executable, "-m", service.package, *args]


def server_argv(
    service: Service, workers: int, *, host: str = HOST, port: int | None = None
) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", f"{service.package}.wsgi:application",
        "-c", "python:servicekit.gunicorn_conf",
        "--bind", f"{host}:{port or service.port}",
        "--workers", str(workers),
    ]  # fmt: skip


def migrate(service: Service, env: dict[str, str]) -> None:
    subprocess.run(manage_argv(service, "migrate", "--noinput", "-v", "0"), env=env, check=True)


def mail_sink() -> Child | None:
    """A local SMTP server keeping every message as an .eml file in MAIL_DIR.

    Skipped when EMAIL_HOST is set (real SMTP configured) or the port is taken.
    """
    if os.environ.get("EMAIL_HOST") or port_in_use(MAIL_PORT):
        return None
    argv = [
        sys.executable, "-m", "devstack.mailsink",
        "--port", str(MAIL_PORT), "--dir", str(MAIL_DIR),
    ]  # fmt: skip
    return Child("mail", argv, dict(os.environ, PYTHONUNBUFFERED="1"), "37")


def wait_live(
    service: Service, timeout: float = 60.0, supervisor: Supervisor | None = None
) -> bool:
    """Wait for the service to answer; the supervisor restarts whatever dies meanwhile."""
    url = f"http://127.0.0.1:{service.port}/health/live"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if supervisor is not None:
            supervisor.poll()
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def wait_ports_free(ports: list[int], timeout: float = 15.0) -> list[int]:
    """The ports still taken after a while: a stack that was just killed is still stopping."""
    deadline = time.monotonic() + timeout
    busy = [port for port in ports if port_in_use(port)]
    if busy:
        print(f"==> waiting for ports {busy} to be released", flush=True)
    while busy and time.monotonic() < deadline:
        time.sleep(0.5)
        busy = [port for port in busy if port_in_use(port)]
    return busy


def seed(services: list[Service], envs: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Each service's `seed_demo` gets what earlier ones made (the organizer's id, say)."""
    context: dict[str, Any] = {}
    for service in services:
        result = subprocess.run(
            manage_argv(service, "seed_demo", "--context", json.dumps(context)),
            env=envs[service.name],
            check=True,
            capture_output=True,
            text=True,
        )
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        context[service.name] = json.loads(lines[-1]) if lines else {}
    return context


def banner(services: list[Service], context: dict[str, Any], nats_url: str) -> str:
    lines = ["", "Turnstile is up.", ""]
    # The pages first: the address a person opens.
    for service in sorted(services, key=lambda s: s.name != WEB_SERVICE.name):
        base = f"http://127.0.0.1:{service.port}"
        if service.name == WEB_SERVICE.name:
            lines.append(f"  {service.name:<14} {base}/   open this in a browser")
            continue
        lines.append(
            f"  {service.name:<14} {base}   docs {base}/api/docs/   ready {base}/health/ready"
        )
    lines += ["", f"  NATS JetStream {nats_url}", f"  data           {DATA_DIR}", ""]
    accounts = context.get("users", {}).get("accounts", [])
    if accounts:
        lines.append("Demo accounts (email / password):")
        for account in accounts:
            lines.append(f"  {account['role']:<10} {account['email']:<28} {account['password']}")
        lines.append("")
    mail_note = context.get("notifications", {}).get("mail")
    if mail_note:
        lines += [f"Mail: {mail_note}", ""]
    lines.append(
        "A process that dies is restarted. Ctrl-C (or SIGTERM) stops everything;"
        " run again to resume with the same data."
    )
    return "\n".join(lines)


def up(workers: int = 2) -> int:
    services = available_services()
    busy = wait_ports_free([s.port for s in services])
    if busy:
        print(f"Ports {busy} are in use: is the stack already running?", file=sys.stderr)
        return 1
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    dev_secrets = load_dev_secrets(DATA_DIR / "secrets.env")

    stop_on_signals()
    postgres: EmbeddedPostgres | None = None
    nats: EmbeddedNats | None = None
    supervisor = Supervisor()
    try:
        # Servers given from outside (DATABASE_URL, NATS_URL) are not the stack's to watch.
        if not all(os.environ.get(s.database_env) for s in services):
            print("==> starting embedded PostgreSQL", flush=True)
            postgres = EmbeddedPostgres(DATA_DIR / "postgres")
            supervisor.start(WatchedPostgres(postgres))
        nats_url = os.environ.get("NATS_URL", "")
        if not nats_url:
            print("==> starting embedded NATS JetStream", flush=True)
            nats = EmbeddedNats(DATA_DIR / "nats", port=NATS_PORT)
            supervisor.start(WatchedNats(nats))
            nats_url = nats.url

        envs: dict[str, dict[str, str]] = {}
        for service in services:
            database_url = os.environ.get(service.database_env)
            if not database_url:
                assert postgres is not None
                database_url = postgres.ensure_database(service.database)
            envs[service.name] = service_env(
                service, database_url=database_url, nats_url=nats_url, dev_secrets=dev_secrets
            )
            print(f"==> migrating {service.name}", flush=True)
            migrate(service, envs[service.name])
        print("==> loading demo data", flush=True)
        context = seed(services, envs)

        sink = mail_sink()
        if sink is not None:
            supervisor.start(sink)
        color = iter(COLORS * 4)
        for service in services:
            env = envs[service.name]
            supervisor.start(Child(service.name, server_argv(service, workers), env, next(color)))
            for worker in service.workers:
                name = f"{service.name}-{worker.name}"
                argv = manage_argv(service, *worker.command)
                supervisor.start(Child(name, argv, env, next(color)))
        for service in services:
            if not wait_live(service, supervisor=supervisor):
                print(f"{service.name} did not become live; see its output above.")
                return 1
        print(banner(services, context, nats_url), flush=True)
        supervisor.run()
    except GaveUp as exc:
        print(f"\n{exc}\n==> stopping the stack", flush=True)
        return 1
    except KeyboardInterrupt:
        print("\n==> stopping", flush=True)
        return 0
    except subprocess.CalledProcessError as exc:
        print(f"\n{exc}\n{exc.stderr or ''}", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # an embedded server could not start
        print(f"\n{exc}", file=sys.stderr)
        return 1
    finally:
        ignore_stop_signals()
        # The services first: what they finish on SIGTERM may need the database and the bus.
        servers = [child for child in supervisor.children if isinstance(child, WatchedServer)]
        stop_all([child for child in supervisor.children if child not in servers])
        stop_all(servers)
