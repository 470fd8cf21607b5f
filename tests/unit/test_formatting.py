"""The tree is `ruff format`ted and `ruff check`-clean (CI runs this through `./dev test`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True)


def test_the_tree_is_formatted() -> None:
    done = ruff("format", "--check", ".")
    assert done.returncode == 0, f"run `ruff format .`:\n{done.stdout}{done.stderr}"


def test_the_tree_passes_ruff_check() -> None:
    done = ruff("check", ".")
    assert done.returncode == 0, f"run `ruff check --fix .`:\n{done.stdout}{done.stderr}"


def test_the_format_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("x  =  {'a':1}\n")
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", str(bad)], capture_output=True, text=True
    )
    assert done.returncode == 1 and "bad.py" in done.stdout + done.stderr
