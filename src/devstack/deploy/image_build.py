"""Building the image with podman where no registry is reachable.

podman and runc come from Debian; the base image is a debootstrap of bookworm with Debian's
python3, imported once and kept (`podman image exists`). pip inside the build is pointed at
the package index this machine's pip uses, through build arguments: whatever they name on
disk (a local index, a CA bundle) is mounted for the build only, so none of it reaches the
image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from devstack.paths import ROOT

PREREQUISITES = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap"}
DEFAULT_BASE = "localhost/turnstile-base:bookworm"
DEFAULT_TAG = "localhost/turnstile:image-test"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# The settings of this machine's pip that say where packages come from, by their names in
# `pip config list` and in the environment, and the build argument each becomes.
PIP_SETTINGS = {
    "index-url": "PIP_INDEX_URL",
    "extra-index-url": "PIP_EXTRA_INDEX_URL",
    "find-links": "PIP_FIND_LINKS",
    "trusted-host": "PIP_TRUSTED_HOST",
    "cert": "PIP_CERT",
}
# podman's default ulimits (from the host's hard limits) are refused where this runs.
CONTAINERS_CONF = "[containers]\ndefault_ulimits = []\n"


class PrerequisiteError(RuntimeError):
    pass


def ensure_prerequisites() -> None:
    """Install podman, runc and debootstrap with apt-get when missing (as root)."""
    missing = [package for tool, package in PREREQUISITES.items() if not shutil.which(tool)]
    if not missing:
        return
    if os.geteuid() != 0:
        raise PrerequisiteError(
            f"missing {', '.join(missing)}: apt-get install {' '.join(missing)}"
        )
    print(f"==> apt-get install {' '.join(missing)}", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, env=env)


def write_containers_conf(folder: Path) -> Path:
    """The containers.conf podman reads here, pointed at by CONTAINERS_CONF."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "containers.conf"
    path.write_text(CONTAINERS_CONF)
    os.environ["CONTAINERS_CONF"] = str(path)
    return path


def podman(
    *args: str, check: bool = True, capture: bool = False
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], check=check, text=True, capture_output=capture)


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def make_base_image(name: str = DEFAULT_BASE) -> None:
    """A minimal bookworm with python3 and its venv module, imported as `name`; kept."""
    if image_exists(name):
        print(f"==> base image {name}: exists, kept", flush=True)
        return
    print(f"==> base image {name}: debootstrap bookworm (a minute or two)", flush=True)
    with tempfile.TemporaryDirectory(prefix="turnstile-base-") as folder:
        root = Path(folder) / "root"
        subprocess.run(
            [
                "debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                "bookworm", str(root), DEBIAN_MIRROR,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (root / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            ["podman", "import", "--quiet", "-", name],
            stdin=tar.stdout,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        if tar.wait() != 0:
            raise RuntimeError("tar of the base image's root failed")


def pip_settings() -> dict[str, str]:
    """Where this machine's pip finds packages: `pip config list`, then the environment."""
    found: dict[str, str] = {}
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    ).stdout
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        name = key.rpartition(".")[2]
        if name in PIP_SETTINGS and value:
            found[name] = value.strip().strip("'\"")
    for name, variable in PIP_SETTINGS.items():
        if os.environ.get(variable):
            found[name] = os.environ[variable]
    return found


def local_paths(settings: dict[str, str]) -> list[Path]:
    """The folders and files on this machine the settings name, to mount for the build."""
    paths: list[Path] = []
    for name, value in settings.items():
        if name == "trusted-host":
            continue
        for item in value.split():
            parsed = urlsplit(item)
            if parsed.scheme == "file":
                path = Path(parsed.path)
            elif not parsed.scheme:
                path = Path(item)
            else:
                continue
            if name.endswith("index-url") and path.name == "simple":
                path = path.parent  # its files/ sit beside simple/
            if path.exists() and path not in paths:
                paths.append(path)
    return paths


def build_arguments(base_image: str, settings: dict[str, str]) -> list[str]:
    args = ["--build-arg", f"BASE_IMAGE={base_image}"]
    for name, value in sorted(settings.items()):
        args += ["--build-arg", f"{PIP_SETTINGS[name]}={value}"]
    for path in local_paths(settings):
        args += ["--volume", f"{path}:{path}:ro"]
    return args


def build_image(base_image: str, tag: str, log: Path) -> None:
    """`podman build` of the repository's Containerfile; HEALTHCHECK needs the docker format.

    Its output goes to `log`; the end of it is printed when the build fails."""
    print(f"==> building {tag} on {base_image} (log: {log})", flush=True)
    argv = [
        "podman", "build", "--format", "docker", "--network", "host",
        "--file", str(ROOT / "Containerfile"), "--tag", tag,
        *build_arguments(base_image, pip_settings()), str(ROOT),
    ]  # fmt: skip
    with log.open("w") as out:
        returncode = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
    if returncode.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-30:]
        raise RuntimeError("podman build failed:\n" + "\n".join(tail))
