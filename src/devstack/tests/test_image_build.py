"""How image-test points the build's pip at this machine's package index: build arguments
for the settings, and a read-only mount for what they name on disk (never a copy)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devstack.deploy import image_build


def test_the_settings_become_build_arguments_and_their_folders_mounts(tmp_path: Path) -> None:
    index, wheels = tmp_path / "pypi", tmp_path / "wheels"
    (index / "simple").mkdir(parents=True)
    wheels.mkdir()
    bundle = tmp_path / "ca.crt"
    bundle.write_text("certificate")
    settings = {
        "index-url": "https://pypi.example.org/simple",
        "extra-index-url": f"file://{index}/simple https://other.example.org/simple",
        "find-links": str(wheels),
        "cert": str(bundle),
    }
    args = image_build.build_arguments("localhost/base:1", settings)
    pairs = list(zip(args[::2], args[1::2], strict=True))
    assert ("--build-arg", "BASE_IMAGE=localhost/base:1") in pairs
    assert ("--build-arg", "PIP_INDEX_URL=https://pypi.example.org/simple") in pairs
    assert ("--build-arg", f"PIP_FIND_LINKS={wheels}") in pairs
    assert ("--build-arg", f"PIP_CERT={bundle}") in pairs
    mounts = [value for flag, value in pairs if flag == "--volume"]
    # A local index is mounted whole: its pages link to files beside simple/.
    assert mounts == [f"{index}:{index}:ro", f"{wheels}:{wheels}:ro", f"{bundle}:{bundle}:ro"]


def test_a_path_that_does_not_exist_is_not_mounted(tmp_path: Path) -> None:
    assert image_build.local_paths({"find-links": str(tmp_path / "missing")}) == []


def test_the_environment_wins_over_pip_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example.org/simple")
    assert image_build.pip_settings()["index-url"] == "https://mirror.example.org/simple"


def test_the_containers_conf_empties_the_default_ulimits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTAINERS_CONF", "restored after the test")
    path = image_build.write_containers_conf(tmp_path / "conf")
    assert path.read_text() == "[containers]\ndefault_ulimits = []\n"
    assert os.environ["CONTAINERS_CONF"] == str(path)
