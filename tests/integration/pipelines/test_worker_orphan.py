"""A worker whose pool was killed -9 while Redis was unreachable stops by itself instead of retrying the
batch forever as an orphan that holds its partitions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from kafka_support import produce_exact

from watchtower.stack.process import free_port

pytestmark = pytest.mark.integration

SUPERVISOR = """
import sys, time
from pathlib import Path
from pipelines.workers.enricher import WorkerSettings
from pipelines.workers.pool import WorkerPool
from watchtower.config.models import WorkersConfig

bootstrap, redis_url, topic, group, log_path = sys.argv[1:6]
settings = WorkerSettings(bootstrap=bootstrap, redis_url=redis_url, topic=topic, group=group,
                          workers=WorkersConfig(count=1, session_timeout=6.0, max_poll_interval=15.0))
pool = WorkerPool(settings, log_path=Path(log_path)).start(1)
print(pool.pids()[0], flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) counts as gone.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[1].split()[0] != "Z"


def test_worker_stops_when_its_pool_dies_while_redis_is_down(
    bootstrap, topic_factory, group_factory, tmp_path
):
    topic, group = topic_factory("orphan"), group_factory("orphan")
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: every write fails
    log = tmp_path / "workers.log"
    sup = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, bootstrap, dead_redis, topic, group, str(log)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    worker = int(sup.stdout.readline())
    try:
        produce_exact(bootstrap, topic, {0: 5})  # the worker consumes them and retries the Redis write
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "retrying the batch" not in _text(log):
            time.sleep(0.2)
        assert "retrying the batch" in _text(log) and alive(worker), _text(log)
        sup.send_signal(signal.SIGKILL)
        sup.wait()
        killed = time.monotonic()
        while time.monotonic() - killed < 20 and alive(worker):
            time.sleep(0.1)
        assert not alive(worker), "the orphaned worker kept retrying the batch"
        assert "supervisor gone; stopping" in _text(log)
        assert time.monotonic() - killed < 20
    finally:
        if alive(worker):
            os.kill(worker, signal.SIGKILL)
        if sup.poll() is None:
            sup.kill()


def _text(path) -> str:
    return path.read_text() if path.exists() else ""
