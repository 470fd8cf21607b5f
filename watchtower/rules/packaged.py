"""The default rule set that ships inside the package (the repository's `alerts/`, installed as package
data), used when `alerting.rules` is not set; a configured list replaces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

PACKAGE = "alerts"


def packaged_rules() -> Path:
    """The directory of the default rule files, wherever the package is installed."""
    root = files(PACKAGE)
    if not isinstance(root, Path):  # only a zip import would give something else; watchtower is not zip-safe
        raise RuntimeError(f"the packaged rules ({PACKAGE}) are not on the filesystem: {root}")
    return root


def rule_paths(configured: Sequence[Path] | None) -> tuple[Path, ...]:
    """What the daemon evaluates: the configured files and directories, else the packaged defaults."""
    return tuple(configured) if configured is not None else (packaged_rules(),)
