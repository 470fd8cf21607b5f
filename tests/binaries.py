"""External binaries the tests run for real: a missing one fails the test that needs it, never a silent skip.

`./dev test` installs them with apt-get when it runs as root (as `.ci/run` does) and otherwise says which are
missing. To skip the tests that need one instead, list it in WATCHTOWER_TEST_ALLOW_MISSING
(comma-separated binary names, or `all`); the skip and its reason are still reported in the summary.
"""

from __future__ import annotations

import os
import shutil

import pytest

ALLOW_MISSING = "WATCHTOWER_TEST_ALLOW_MISSING"

# The binaries `./dev test` installs (its TEST_BINARIES lists the same pairs; a unit test holds them equal):
# binary -> the Debian package that ships it.
PACKAGES = {
    "prometheus": "prometheus",
    "promtool": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
    "amtool": "prometheus-alertmanager",
}


def allowed_missing(env: dict[str, str] | os._Environ[str] = os.environ) -> set[str]:
    return {name.strip() for name in env.get(ALLOW_MISSING, "").split(",") if name.strip()}


def require_binary(name: str, package: str | None = None) -> str:
    """The path of `name`; else fail the test with the apt package to install (skip when opted out).

    `package` defaults to the one PACKAGES names for `name`."""
    package = package or PACKAGES[name]
    path = shutil.which(name)
    if path is not None:
        return path
    how = f"{name} is not on PATH: install it with `apt-get install -y {package}` (./dev test does that as root)"
    allowed = allowed_missing()
    if name in allowed or "all" in allowed:
        pytest.skip(f"{how}; skipped because {ALLOW_MISSING}={os.environ[ALLOW_MISSING]}")
    pytest.fail(f"{how}, or set {ALLOW_MISSING}={name} to skip the tests that need it", pytrace=False)
