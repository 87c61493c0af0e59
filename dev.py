#!/usr/bin/env python3
"""Entry point for development: sets up the virtual environment, then runs a devstack command.

    python3 dev.py up      start the whole stack (embedded PostgreSQL and NATS, all services)
    python3 dev.py test    run every service's test suite against fresh embedded servers
    python3 dev.py check   ruff, mypy and makemigrations --check
    python3 dev.py --help  everything else

Only the standard library is used here: this file must run on a machine where nothing
has been installed yet.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("TURNSTILE_VENV", ROOT / ".venv"))
INSTALL_INPUTS = ("pyproject.toml", "requirements/constraints.txt")


def _venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def _wanted_stamp() -> str:
    digest = hashlib.sha256()
    for name in INSTALL_INPUTS:
        path = ROOT / name
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_environment() -> Path:
    """Create the virtual environment and install pinned dependencies when they changed."""
    if sys.version_info < (3, 11):
        sys.exit(f"Python >= 3.11 is required, this is {sys.version.split()[0]}")
    python = _venv_python()
    if not python.exists():
        print(f"==> creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / ".turnstile-installed"
    wanted = _wanted_stamp()
    if not stamp.exists() or stamp.read_text() != wanted:
        print("==> installing dependencies (first run or pyproject changed)", flush=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True
        )
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "-c",
                str(ROOT / "requirements" / "constraints.txt"),
                "-e",
                f"{ROOT}[dev]",
            ],
            check=True,
        )
        stamp.write_text(wanted)
    return python


def main() -> None:
    python = ensure_environment()
    args = [str(python), "-m", "devstack", *sys.argv[1:]]
    if os.name == "nt":
        sys.exit(subprocess.call(args))
    os.execv(str(python), args)


if __name__ == "__main__":
    main()
