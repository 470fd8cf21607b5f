"""Failpoints in a real child process: armed, it dies by SIGKILL and disarms; otherwise nothing happens."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import failpoints

NAME = failpoints.AFTER_WRITE_BEFORE_COMMIT

# The site as the pipeline has it: a batch's keys, an optional flush before the crash.
CHILD = """
import sys
from pipelines import failpoints
keys = [b"u-1", b"chaos-crash-7-3"]
failpoints.hit(sys.argv[1], when=lambda p: any(k.startswith(p.encode()) for k in keys),
               before=lambda: print("flushed", flush=True))
print("survived", flush=True)
"""


def run(directory: Path | None, name: str = NAME) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != failpoints.ENV}
    if directory is not None:
        env[failpoints.ENV] = str(directory)
    return subprocess.run(
        [sys.executable, "-c", CHILD, name], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("arg", ["", "chaos-crash-7-"])
def test_an_armed_failpoint_kills_the_process_once(tmp_path: Path, arg: str) -> None:
    failpoints.arm(tmp_path, NAME, arg)
    assert failpoints.armed(tmp_path, NAME)
    first = run(tmp_path)
    assert first.returncode == -signal.SIGKILL, first.stderr
    assert first.stdout == "flushed\n"  # `before` ran, nothing after the kill did
    assert not failpoints.armed(tmp_path, NAME)
    again = run(tmp_path)  # one shot: the restarted process goes on
    assert (again.returncode, again.stdout) == (0, "survived\n")


def test_an_argument_no_record_matches_leaves_it_armed(tmp_path: Path) -> None:
    failpoints.arm(tmp_path, NAME, "chaos-crash-8-")
    done = run(tmp_path)
    assert (done.returncode, done.stdout) == (0, "survived\n")
    assert failpoints.armed(tmp_path, NAME)


@pytest.mark.parametrize("armed_as", [NAME, "some-other-point"])
def test_unset_or_another_name_does_nothing(tmp_path: Path, armed_as: str) -> None:
    failpoints.arm(tmp_path, armed_as)
    assert run(None).returncode == 0  # no directory in the environment: never looks
    done = run(tmp_path, name="not-armed")
    assert (done.returncode, done.stdout) == (0, "survived\n")
    assert failpoints.armed(tmp_path, armed_as)


def test_arm_never_leaves_a_partial_file(tmp_path: Path) -> None:
    failpoints.arm(tmp_path / "new", NAME, "chaos-crash-1-")
    assert [p.name for p in (tmp_path / "new").iterdir()] == [NAME]
    assert (tmp_path / "new" / NAME).read_text() == "chaos-crash-1-"
