"""`dev.py check`: lint, format, types, the direction of imports, migrations in step with the
models, and the docs."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from devstack.paths import ROOT
from devstack.postgres import EmbeddedPostgres
from devstack.services import available_services


def _run(title: str, argv: list[str], env: dict[str, str] | None = None) -> bool:
    print(f"==> {title}", flush=True)
    ok = subprocess.run(argv, cwd=ROOT, env=env).returncode == 0
    if not ok:
        print(f"FAILED: {title}", flush=True)
    return ok


def run_checks() -> int:
    python = sys.executable
    code = ["src", "tests", "dev.py"]
    results = [
        _run("ruff check", [python, "-m", "ruff", "check", *code]),
        _run("ruff format --check", [python, "-m", "ruff", "format", "--check", *code]),
        _run("mypy", [python, "-m", "mypy", *code]),
        _run(
            "import-linter: the contracts in pyproject.toml",
            [str(Path(python).with_name("lint-imports")), "--no-cache"],
            # The packages as this checkout has them, whichever tree the environment was
            # installed from.
            dict(os.environ, PYTHONPATH=str(ROOT / "src")),
        ),
        _run(
            "docs: headings said once, links that lead somewhere",
            [python, "-m", "devstack.docscheck"],
        ),
        _run(
            "AsyncAPI document current with the message models",
            [python, "-m", "servicekit.messages.asyncapi", "--check"],
        ),
    ]
    workdir = Path(tempfile.mkdtemp(prefix="turnstile-check-"))
    postgres = EmbeddedPostgres(workdir / "postgres", ephemeral=True)
    try:
        postgres.start()
        for service in available_services():
            env = dict(os.environ)
            env.update(
                {
                    "DJANGO_SETTINGS_MODULE": service.settings_module,
                    "DATABASE_URL": postgres.ensure_database(service.database),
                    "SECRET_KEY": secrets.token_urlsafe(32),
                }
            )
            results.append(
                _run(
                    f"makemigrations --check ({service.name})",
                    [python, "-m", service.package, "makemigrations", "--check", "--dry-run"],
                    env,
                )
            )
            spectacular = ["spectacular", "--fail-on-warn", "--file", os.devnull]
            results.append(
                _run(
                    f"OpenAPI schema without warnings ({service.name})",
                    [python, "-m", service.package, *spectacular],
                    env,
                )
            )
    finally:
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if all(results) else 1
