"""`dev.py test`: every service's test suite against fresh embedded PostgreSQL and NATS.

Each suite runs in its own pytest process (Django is configured once per process, and each
service has its own settings and database). The servers listen on a private socket and a
free port, so a stack already running on 8000-8002 is not disturbed. They live in a
temporary folder that a reaper process removes, servers and all, even when the run is
killed; pytest and nats-server end with the run by themselves (devstack.process).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devstack.fuzz import run_in_test as run_fuzz
from devstack.nats import EmbeddedNats
from devstack.packages import ensure_debian_package
from devstack.paths import ROOT
from devstack.postgres import EmbeddedPostgres
from devstack.process import end_with_parent
from devstack.reaper import reaped
from devstack.services import Service, available_services


@dataclass(frozen=True)
class Suite:
    name: str
    service: Service
    paths: tuple[str, ...]


def suites() -> list[Suite]:
    services = available_services()
    found = [Suite(s.name, s, (f"src/{s.package}",)) for s in services]
    users = next((s for s in services if s.name == "users"), None)
    if users is not None:
        # The shared library's and the dev tooling's own tests run under the users
        # service's settings.
        found.insert(0, Suite("servicekit", users, ("src/servicekit", "src/devstack/tests")))
        # Tests that span services run real service processes on databases of their own;
        # the pytest process itself needs some service's settings, and these are the users
        # service's, whose test database the token-verification test lends its process.
        found.append(Suite("e2e", users, ("tests/e2e",)))
    return found


SUMMARY = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)")
SUMMARY_LINE = re.compile(r"\d+ (passed|failed|errors?|skipped|deselected).* in [0-9.]+s")


def run_suite(suite: Suite, env: dict[str, str], pytest_args: list[str]) -> Counter[str]:
    print(f"\n==> {suite.name}: pytest {' '.join(suite.paths)}", flush=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", *suite.paths, "-p", "no:cacheprovider", *pytest_args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=end_with_parent(),  # same process group: Ctrl-C reaches pytest too
    )
    assert process.stdout is not None
    last = ""
    for line in process.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        if SUMMARY_LINE.search(line):
            last = line
    code = process.wait()
    counts: Counter[str] = Counter()
    if last:
        for number, kind in SUMMARY.findall(last):
            counts["error" if kind.startswith("error") else kind] += int(number)
    if code not in (0, 5) and not counts["failed"] and not counts["error"]:
        counts["error"] += 1  # pytest itself failed (collection, usage, crash)
    return counts


@contextmanager
def throwaway_servers() -> Iterator[tuple[Path, EmbeddedPostgres, EmbeddedNats]]:
    """Throwaway PostgreSQL and NATS in a temporary folder that does not outlive this run."""
    workdir = Path(tempfile.mkdtemp(prefix="turnstile-test-"))
    postgres = EmbeddedPostgres(workdir / "postgres", ephemeral=True)
    nats = EmbeddedNats(workdir / "nats", ephemeral=True)
    with reaped(workdir):
        try:
            print("==> starting embedded PostgreSQL and NATS for the tests", flush=True)
            postgres.start()
            nats.start()
            yield workdir, postgres, nats
        finally:
            nats.stop()
            postgres.stop()
            shutil.rmtree(workdir, ignore_errors=True)


# The outside fuzzer (devstack.fuzz) runs after the pytest suites, on the same servers; then
# the fault suite (devstack.chaos), on servers of its own that it stops and kills.
FUZZ = "fuzz"
CHAOS = "chaos"


# Suites with tests in a real browser (Debian's chromium driven by Playwright): the web
# pages, and the shared library's test of the API docs pages.
BROWSER_SUITES = ("web", "servicekit")


def run_tests(selected: list[str], pytest_args: list[str]) -> int:
    chosen = [s for s in suites() if not selected or s.name in selected]
    names = [s.name for s in suites()] + [FUZZ, CHAOS]
    unknown = set(selected) - set(names)
    if unknown:
        print(f"unknown suites: {sorted(unknown)}; have {names}")
        return 2
    # Narrowed runs (`dev.py test users -- -k refresh`) skip the fuzzer unless it is named.
    fuzz = FUZZ in selected or (not selected and not pytest_args)
    chaos = CHAOS in selected or (not selected and not pytest_args)
    if any(s.name in BROWSER_SUITES for s in chosen):
        # The browser tests skip without it (and fail in CI), so install it when we may.
        ensure_debian_package("chromium")
    totals: Counter[str] = Counter()
    with throwaway_servers() as (workdir, postgres, nats):
        base_env = dict(os.environ)
        base_env.update(
            {
                "SECRET_KEY": secrets.token_urlsafe(48),
                "NATS_URL": nats.url,
                "TURNSTILE_TEST_POSTGRES_URL": postgres.url("postgres"),
                "TURNSTILE_TEST_WORKDIR": str(workdir),
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        for suite in chosen:
            env = dict(base_env)
            env["DJANGO_SETTINGS_MODULE"] = suite.service.settings_module
            env["DATABASE_URL"] = postgres.url(suite.service.database)
            totals += run_suite(suite, env, pytest_args)
        if fuzz:
            totals += run_fuzz(
                postgres, nats_url=nats.url, secret_key=base_env["SECRET_KEY"], workdir=workdir
            )
        if chaos:
            from devstack.chaos.run import run_in_test as run_chaos

            totals += run_chaos(workdir)
    failed = totals["failed"] + totals["error"]
    print()
    print(f"tests: {totals['passed']} passed, {failed} failed, {totals['skipped']} skipped")
    return 1 if failed else 0
