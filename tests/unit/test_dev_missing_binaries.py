"""`./dev test` with the test binaries missing: it names each one with its apt-get line and the opt-out, never
skipping silently; as root it tries apt-get first, unless WATCHTOWER_DEV_NO_APT=1.

The script runs for real, from a copy in a temp dir (it works relative to its own directory) with a stub venv
whose python execs this one, so the real .venv and its stamp are never touched. PATH holds only what the
script needs (bash, dirname, id, sed, sort, tr) plus stubs (java; an `id` that says root; an apt-get that
records its calls), so prometheus, promtool, amtool and prometheus-alertmanager are absent whatever the host has.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from binaries import ALLOW_MISSING, PACKAGES

ROOT = Path(__file__).resolve().parents[2]
MISSING = ["prometheus", "promtool", "prometheus-alertmanager", "amtool"]


def _stub(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


@pytest.fixture
def dev(tmp_path: Path):
    """A copy of ./dev in its own dir with an installed stub venv; returns a runner of `./dev ARGS`."""
    repo = tmp_path / "repo"
    (repo / ".venv" / "bin").mkdir(parents=True)
    shutil.copy2(ROOT / "dev", repo / "dev")
    (repo / "pyproject.toml").write_text("")
    os.utime(repo / "pyproject.toml", (0, 0))  # older than the stamp: no pip install
    _stub(repo / ".venv" / "bin" / "python", f'exec {sys.executable} "$@"')
    (repo / ".venv" / ".installed").touch()

    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for tool in ("bash", "dirname", "sed", "sort", "tr", "cat"):
        found = shutil.which(tool)
        assert found, f"{tool} is needed to run ./dev"
        (bin_ / tool).symlink_to(found)
    _stub(bin_ / "java", "exit 0")
    _stub(bin_ / "id", "echo 0")  # root, so the apt-get branch is reachable
    calls = tmp_path / "apt-calls"
    _stub(bin_ / "apt-get", f'echo "$*" >> {calls}; [ "$1" = update ]')  # records; installs nothing

    def run(
        *args: str, extra_bins: tuple[str, ...] = (), **env: str
    ) -> tuple[subprocess.CompletedProcess, str]:
        for name in extra_bins:
            _stub(bin_ / name, "exit 0")
        environ = {"PATH": str(bin_), "PYTHON": sys.executable, "HOME": str(tmp_path), **env}
        r = subprocess.run(
            ["/usr/bin/env", "bash", str(repo / "dev"), *args],
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return r, calls.read_text() if calls.exists() else ""

    return run


def _expected_report(missing: list[str]) -> list[str]:
    lines = [
        f"./dev test: {name} is not on PATH: install it with: sudo apt-get install -y {PACKAGES[name]}"
        for name in missing
    ]
    lines.append(
        "./dev test: the tests that need them will FAIL; to skip them instead set "
        f"{ALLOW_MISSING}={','.join(missing)}"
    )
    return lines


def test_without_apt_each_missing_binary_is_named_with_its_install_line(dev):
    r, apt_calls = dev("test", "--version", WATCHTOWER_DEV_NO_APT="1")
    assert r.returncode == 0, r.stderr
    assert "pytest" in r.stdout + r.stderr  # pytest ran after the report
    assert apt_calls == ""  # WATCHTOWER_DEV_NO_APT=1: apt-get never runs, even as root
    report = [line for line in r.stderr.splitlines() if line.startswith("./dev test:")]
    assert report == _expected_report(MISSING)


def test_as_root_apt_get_is_tried_first_then_the_still_missing_are_named(dev):
    r, apt_calls = dev("test", "--version")
    assert r.returncode == 0, r.stderr
    assert apt_calls.splitlines() == [
        "update -qq",
        "install -y -qq --no-install-recommends prometheus prometheus-alertmanager",
    ]
    report = [line for line in r.stderr.splitlines() if line.startswith("./dev test:")]
    assert report == [
        "./dev test: installing prometheus prometheus-alertmanager (apt-get) for the tests",
        "./dev test: apt-get could not install prometheus prometheus-alertmanager ",
        *_expected_report(MISSING),
    ]


def test_only_the_binaries_still_missing_are_named(dev):
    r, apt_calls = dev("test", "--version", extra_bins=("prometheus", "promtool"), WATCHTOWER_DEV_NO_APT="1")
    assert r.returncode == 0, r.stderr
    report = [line for line in r.stderr.splitlines() if line.startswith("./dev test:")]
    assert report == _expected_report(["prometheus-alertmanager", "amtool"])


def test_nothing_is_reported_when_every_binary_is_present(dev):
    r, apt_calls = dev("test", "--version", extra_bins=tuple(MISSING))
    assert r.returncode == 0, r.stderr
    assert apt_calls == ""
    assert "./dev test:" not in r.stderr


def test_dev_and_the_test_helper_list_the_same_binaries():
    listed = re.search(r'^TEST_BINARIES="([^"]*)"', (ROOT / "dev").read_text(), re.M)
    assert listed, "./dev no longer sets TEST_BINARIES"
    pairs = dict(pair.split(":") for pair in listed.group(1).split())
    assert pairs == PACKAGES
    assert set(MISSING) == set(PACKAGES)
