"""Outside fuzzing: schemathesis against each service's own published OpenAPI schema.

`dev.py test` runs it after the pytest suites, against a stack of its own: the test run's
PostgreSQL and NATS, every web server and worker on free ports, and an SMTP sink. It must
find nothing: no server error, no answer the schema does not describe, no bad input
accepted. Afterwards every process of that stack must still be alive and ready, and mail
must still flow, whatever the fuzzer sent.

`dev.py fuzz --minutes N` runs the same fuzzer longer (in rounds, each with fresh tokens)
against a stack of its own, or with `--running` against the stack `dev.py up` started.

What the fuzzer runs is configured in `schemathesis.toml` at the repository root; this module
only starts the stack, logs in the callers whose tokens it uses, and judges the outcome.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.paths import ROOT, free_port
from devstack.process import popen_owned, stop_groups
from devstack.services import Service, api_services, available_services
from devstack.stack import manage_argv, migrate, seed, server_argv

CONFIG = ROOT / "schemathesis.toml"
# Fixed seeds, so a CI failure replays: `dev.py fuzz --seed N` runs the same cases.
DEFAULT_SEED = 20261201
# Per service, within CI's budget: the coverage phase runs to completion, fuzzing and
# stateful testing repeat until this is spent.
CI_SECONDS_PER_SERVICE = 150
# Tokens live 15 minutes at most; longer runs go in rounds, each logging in again.
ROUND_SECONDS = 600
# Demo callers whose tokens the fuzzer uses (see schemathesis.toml for which goes where).
ROLES = ("admin", "organizer", "customer")


@dataclass
class Stack:
    """A stack of the services on free ports, every process logging to its own file."""

    workdir: Path
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    accounts: list[dict[str, str]] = field(default_factory=list)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    mail_port: int = 0
    mail_dir: Path | None = None

    def base_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start_process(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        self.processes[name] = popen_owned(argv, env=env, stdout=log, stderr=subprocess.STDOUT)

    def dead(self) -> list[str]:
        return [name for name, process in self.processes.items() if process.poll() is not None]

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        stop_groups(self.processes.values())


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        data: dict[str, Any] = json.loads(response.read())
        return data


def _wait_ready(url: str, timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if _get(f"{url}/health/ready")[0] == 200:
                return True
        time.sleep(0.3)
    return False


def isolated_env(
    service: Service,
    *,
    database_url: str,
    nats_url: str,
    secret_key: str,
    users_url: str,
    mail_port: int,
    mail_dir: Path,
) -> dict[str, str]:
    """The environment of a service in a stack of its own (free ports, its own SMTP sink)."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": service.settings_module,
            "DATABASE_URL": database_url,
            "NATS_URL": nats_url,
            "SECRET_KEY": secret_key,
            "PYTHONUNBUFFERED": "1",
            "JWT_JWKS_URL": f"{users_url}/.well-known/jwks.json",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(mail_port),
            "MAIL_DIR": str(mail_dir),
            "LOG_LEVEL": "WARNING",
            # Every request of the fuzzer and of this harness comes from 127.0.0.1:
            # per-address limits would soon refuse them all, and the harness's own
            # refreshes between rounds with them. A load generator switches them off;
            # the per-account and per-user limits stay as in production.
            "RATE_LIMIT_LOGIN_PER_ADDRESS": "off",
            "RATE_LIMIT_REGISTER_PER_ADDRESS": "off",
            "RATE_LIMIT_REFRESH_PER_ADDRESS": "off",
            "RATE_LIMIT_BOOKING_PER_ADDRESS": "off",
            "RATE_LIMIT_PAYMENT_PER_ADDRESS": "off",
        }
    )
    return env


@contextlib.contextmanager
def own_stack(
    *, database_url: Any, nats_url: str, secret_key: str, workdir: Path
) -> Iterator[Stack]:
    """Migrate, seed and start every service with its workers; stop them all at the end.

    `database_url(name)` gives the URL of a database of that name, created if missing.
    """
    services = available_services()
    stack = Stack(workdir=workdir)
    stack.ports = {service.name: free_port() for service in services}
    stack.mail_port = free_port()
    stack.mail_dir = workdir / "mail"
    try:
        stack.start_process(
            "mail",
            [sys.executable, "-m", "devstack.mailsink", "--port", str(stack.mail_port),
             "--dir", str(stack.mail_dir)],
            dict(os.environ, PYTHONUNBUFFERED="1"),
        )  # fmt: skip
        envs: dict[str, dict[str, str]] = {}
        for service in services:
            env = isolated_env(
                service,
                database_url=database_url(f"fuzz_{service.database}"),
                nats_url=nats_url,
                secret_key=secret_key,
                users_url=stack.base_url("users"),
                mail_port=stack.mail_port,
                mail_dir=stack.mail_dir,
            )
            envs[service.name] = env
            migrate(service, env)
        context = seed(services, envs)
        stack.accounts = context.get("users", {}).get("accounts", [])
        for service in services:
            env = envs[service.name]
            stack.start_process(
                service.name,
                server_argv(service, 2, host="127.0.0.1", port=stack.ports[service.name]),
                env,
            )
            for worker in service.workers:
                stack.start_process(
                    f"{service.name}-{worker.name}", manage_argv(service, *worker.command), env
                )
        for service in services:
            if not _wait_ready(stack.base_url(service.name)):
                raise RuntimeError(
                    f"{service.name} did not become ready:\n{stack.log_tail(service.name)}"
                )
        yield stack
    finally:
        stack.stop()


def running_stack() -> Stack:
    """The stack `dev.py up` started: fixed ports, demo accounts."""
    from users_service.accounts.demo import DEMO_ACCOUNTS

    stack = Stack(workdir=Path(tempfile.mkdtemp(prefix="turnstile-fuzz-")))
    stack.ports = {service.name: service.port for service in available_services()}
    stack.accounts = [
        {"role": role, "email": email, "password": password}
        for role, _name, email, password in DEMO_ACCOUNTS
    ]
    return stack


def open_sessions(stack: Stack, *, victim_rounds: int) -> None:
    """Log in every caller the fuzzer will act as, before any fuzzing starts.

    The fuzzer's own wrong passwords may use up an account's login limit, so nobody logs
    in again later: each round refreshes these sessions instead. The users service's fuzzing
    acts as a customer and may end that customer's sessions (`logout/all`), so each of its
    rounds gets a customer of its own, registered here.
    """
    users = stack.base_url("users")
    accounts = {a["role"]: a for a in stack.accounts if a["role"] in ROLES}
    nonce = time.time_ns()
    for index in range(victim_rounds):
        email = f"fuzz-{nonce}-{index}@turnstile.test"
        password = secrets.token_urlsafe(18)
        _post_json(
            f"{users}/api/users/register",
            {"name": f"Fuzz Customer {index}", "email": email, "password": password},
        )
        accounts[f"victim{index}"] = {"email": email, "password": password}
    for key, account in accounts.items():
        tokens = _post_json(
            f"{users}/api/users/login",
            {"email": account["email"], "password": account["password"]},
        )
        stack.refresh_tokens[key] = tokens["refresh"]


def _access_token(stack: Stack, key: str) -> str:
    tokens = _post_json(
        f"{stack.base_url('users')}/api/users/token/refresh", {"refresh": stack.refresh_tokens[key]}
    )
    stack.refresh_tokens[key] = tokens["refresh"]
    access: str = tokens["access"]
    return access


def round_tokens(stack: Stack, *, service: str, index: int) -> dict[str, str]:
    """Environment for schemathesis.toml: a fresh access token per role for this round."""
    env = {f"FUZZ_{role.upper()}_TOKEN": _access_token(stack, role) for role in ROLES}
    if service == "users":
        env["FUZZ_CUSTOMER_TOKEN"] = _access_token(stack, f"victim{index}")
    return env


@dataclass
class Outcome:
    service: str
    operations: int = 0
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def fuzz_service(
    stack: Stack, service: str, *, seconds: int, seed: int, tokens: dict[str, str]
) -> Outcome:
    report_dir = stack.workdir / f"report-{service}"
    shutil.rmtree(report_dir, ignore_errors=True)
    junit = report_dir / "junit.xml"
    argv = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file", str(CONFIG),
        "run", f"{stack.base_url(service)}/api/schema/",
        "--seed", str(seed),
        "--max-time", str(seconds),
        "--report", "junit", "--report-junit-path", str(junit),
        "--report-dir", str(report_dir),
    ]  # fmt: skip
    env = dict(os.environ, **tokens, SCHEMATHESIS_PROJECT=service, NO_COLOR="1")
    print(f"\n==> fuzz {service}: schemathesis, seed {seed}, {seconds} s", flush=True)
    code = subprocess.call(argv, env=env, cwd=ROOT)
    outcome = Outcome(service)
    if not junit.exists():
        outcome.errors.append(f"schemathesis exited {code} without a report")
        return outcome
    root = ET.parse(junit).getroot()  # noqa: S314  (written by the fuzzer just now)
    for case in root.iter("testcase"):
        outcome.operations += 1
        if case.find("failure") is not None:
            outcome.failed.append(case.get("name", "?"))
        elif case.find("error") is not None:
            outcome.errors.append(case.get("name", "?"))
    if code != 0 and not outcome.failed and not outcome.errors:
        outcome.errors.append(f"schemathesis exited {code}")
    return outcome


def mail_flows(stack: Stack) -> bool:
    """After the fuzzing, a notification still reaches the SMTP sink as mail."""
    if stack.mail_dir is None:
        return True
    admin = next(a for a in stack.accounts if a["role"] == "admin")
    access = _access_token(stack, "admin")
    marker = f"after-fuzz-{time.time_ns()}"
    request = urllib.request.Request(
        f"{stack.base_url('notifications')}/api/notification",
        data=json.dumps(
            {"user_id": admin["id"], "title": marker, "body": "Mail still flows."}
        ).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {access}",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30):
        pass
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for path in stack.mail_dir.glob("*.eml"):
            if marker in path.read_text(errors="replace"):
                return True
        time.sleep(0.5)
    return False


def fuzz_stack(
    stack: Stack, *, seconds: int, seed: int, own: bool, services: list[str] | None = None
) -> Counter[str]:
    """Fuzz every service; then judge the stack itself. Counts go into the test summary."""
    counts: Counter[str] = Counter()
    outcomes: list[Outcome] = []
    rounds = -(-seconds // ROUND_SECONDS)
    open_sessions(stack, victim_rounds=rounds)
    for service in services or [s.name for s in api_services() if s.name in stack.ports]:
        remaining = seconds
        for index in range(rounds):
            span = min(remaining, ROUND_SECONDS)
            tokens = round_tokens(stack, service=service, index=index)
            outcome = fuzz_service(stack, service, seconds=span, seed=seed + index, tokens=tokens)
            outcomes.append(outcome)
            remaining -= span
    print("\n==> fuzz results", flush=True)
    for outcome in outcomes:
        bad = len(outcome.failed) + len(outcome.errors)
        print(
            f"  {outcome.service:<14} {outcome.operations} operations, "
            f"{len(outcome.failed)} failed, {len(outcome.errors)} errors",
            flush=True,
        )
        for name in outcome.failed + outcome.errors:
            print(f"    - {name}", flush=True)
        counts["passed"] += outcome.operations - bad
        counts["failed"] += bad
    if own:
        dead = stack.dead()
        for name in dead:
            print(f"  {name} died during fuzzing:\n{stack.log_tail(name)}", flush=True)
        counts["failed"] += len(dead)
        not_ready = [s for s in stack.ports if _get(f"{stack.base_url(s)}/health/ready")[0] != 200]
        for name in not_ready:
            print(f"  {name} is not ready after fuzzing", flush=True)
        counts["failed"] += len(not_ready)
        if mail_flows(stack):
            counts["passed"] += 1
            print("  mail still flows after fuzzing", flush=True)
        else:
            counts["failed"] += 1
            print("  no mail arrived after fuzzing", flush=True)
    return counts


def run_in_test(postgres: Any, *, nats_url: str, secret_key: str, workdir: Path) -> Counter[str]:
    """The fuzz suite of `dev.py test`, on the test run's PostgreSQL and NATS."""
    seconds = int(os.environ.get("TURNSTILE_FUZZ_SECONDS", CI_SECONDS_PER_SERVICE))
    fuzz_dir = workdir / "fuzz"
    fuzz_dir.mkdir(parents=True, exist_ok=True)
    try:
        with own_stack(
            database_url=postgres.ensure_database,
            nats_url=nats_url,
            secret_key=secret_key,
            workdir=fuzz_dir,
        ) as stack:
            return fuzz_stack(stack, seconds=seconds, seed=DEFAULT_SEED, own=True)
    except (RuntimeError, subprocess.CalledProcessError, smtplib.SMTPException) as exc:
        print(f"fuzz: the stack could not run: {exc}", flush=True)
        return Counter(error=1)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dev.py fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="per service (default 5)")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="replay a run")
    parser.add_argument(
        "--running",
        action="store_true",
        help="fuzz the stack `dev.py up` started (ports 8000-8002) instead of one of its own",
    )
    parser.add_argument(
        "--services", nargs="+", help="only these services (default: all)", metavar="NAME"
    )
    args = parser.parse_args(argv)
    seconds = max(1, int(args.minutes * 60))
    print(f"==> fuzz seed {args.seed} (pass --seed {args.seed} to replay)", flush=True)
    if args.running:
        counts = fuzz_stack(
            running_stack(), seconds=seconds, seed=args.seed, own=False, services=args.services
        )
    else:
        from devstack.testing import throwaway_servers

        with (
            throwaway_servers() as (workdir, postgres, nats),
            own_stack(
                database_url=postgres.ensure_database,
                nats_url=nats.url,
                secret_key=secrets.token_urlsafe(48),
                workdir=workdir,
            ) as stack,
        ):
            counts = fuzz_stack(
                stack, seconds=seconds, seed=args.seed, own=True, services=args.services
            )
    failed = counts["failed"] + counts["error"]
    print(f"\nfuzz: {counts['passed']} passed, {failed} failed")
    return 1 if failed else 0
