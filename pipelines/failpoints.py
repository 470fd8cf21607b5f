"""Failpoints: named places in the pipeline where a chaos run can make the process crash, one shot.

    WATCHTOWER_FAILPOINTS_DIR=/tmp/fp python -m pipelines.workers   # the process under test
    arm("/tmp/fp", AFTER_WRITE_BEFORE_COMMIT, "chaos-crash-")      # the chaos run
    hit(AFTER_WRITE_BEFORE_COMMIT, when=lambda prefix: batch_has_key(prefix))   # the pipeline

`hit(name)` does nothing unless the directory named by WATCHTOWER_FAILPOINTS_DIR (read once, at import)
holds a file called `name`. If it does, the file is removed and the process kills itself with SIGKILL:
no `finally`, no atexit, no flush, as a crash or an OOM kill would. Removing the file first makes it one
shot, and only the process whose unlink succeeds dies, so several workers sharing a directory lose one.

The file may hold an argument. A site that passes `when` fires only if `when(argument)` is true, which
lets a chaos run aim at the batch holding its own records instead of whatever batch comes next (a site
sees the argument only while the failpoint is armed, so `when` costs nothing in normal runs).
Unset, `hit` is one attribute lookup.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

ENV = "WATCHTOWER_FAILPOINTS_DIR"
AFTER_WRITE_BEFORE_COMMIT = "after-write-before-commit"

_DIR: str | None = os.environ.get(ENV) or None


def hit(
    name: str,
    when: Callable[[str], bool] | None = None,
    before: Callable[[], object] | None = None,
) -> None:
    """Crash here if `name` is armed (and `when` accepts its argument). `before` runs just before the
    kill, for work that must be complete at the crash (background writes the site wants on disk)."""
    if _DIR is None:
        return
    path = os.path.join(_DIR, name)
    try:
        with open(path, encoding="utf-8") as f:
            arg = f.read().strip()
    except FileNotFoundError:
        return
    if arg and when is not None and not when(arg):
        return
    if before is not None:
        before()
    try:
        os.unlink(path)
    except FileNotFoundError:
        return  # another process sharing the directory took it
    log.warning("failpoint %s: killing process %d with SIGKILL", name, os.getpid())
    for h in logging.getLogger().handlers:
        h.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def arm(directory: str | os.PathLike[str], name: str, arg: str = "") -> Path:
    """Arm `name` in `directory` (created if missing). Written to a temporary name and renamed, so a
    process never reads a half-written argument (an empty one would fire at any batch)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{name}.tmp"
    tmp.write_text(arg, encoding="utf-8")
    path = d / name
    tmp.rename(path)
    return path


def armed(directory: str | os.PathLike[str], name: str) -> bool:
    """Whether `name` is still armed in `directory` (False once a process hit it)."""
    return (Path(directory) / name).exists()
