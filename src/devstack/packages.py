"""Tools from the system's packages that a command needs (wrk for the benchmark, chromium
for the browser tests): found on PATH, or installed from Debian packages when this process
may (root, apt-get), as the commands promise; otherwise the caller says what to install."""

from __future__ import annotations

import os
import shutil
import subprocess


def ensure_debian_package(command: str, package: str | None = None) -> str | None:
    """The path of `command`, installing Debian's `package` (default: the command's name)
    first when it is missing and this process may; None when it is still missing."""
    found = shutil.which(command)
    if found or os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    print(f"==> installing {package or command} from Debian packages", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", package or command],
        check=False,
        capture_output=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    return shutil.which(command)
