"""`watchtower pipeline generate` and `watchtower pipeline workers` as a user runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import orjson
import pytest
import redis
from test_enricher_workers import PARTITIONS, committed, end_offsets, wait_for

from pipelines.workers.enricher import EnricherStore

pytestmark = pytest.mark.integration


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHTOWER")}
    env.update({"WATCHTOWER__PIPELINE__PARTITIONS": str(PARTITIONS), **extra})
    return env


def test_generate_then_workers_from_the_command_line(bootstrap, redis_url, tmp_path, group_factory):
    topic, group = f"cli-{group_factory('t')}", group_factory("cli-enricher")
    manifest = tmp_path / "run.json"
    gen = subprocess.run(
        [sys.executable, "-m", "watchtower", "pipeline", "generate", "--bootstrap", bootstrap, "--topic", topic,
         "--rate", "20000", "--count", "10000", "--duplicates", "0.02", "--malformed", "0.02", "--late", "0.02",
         "--manifest", str(manifest)],
        env=cli_env(), cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert gen.returncode == 0, gen.stderr
    doc = orjson.loads(manifest.read_bytes())
    assert doc["sent"] == 10_000 + PARTITIONS and doc["delivered"] == doc["sent"] and doc["failed"] == 0
    assert doc["counts"]["marker"] == PARTITIONS

    workers = subprocess.Popen(
        [sys.executable, "-m", "watchtower", "pipeline", "workers", "--count", "2", "--bootstrap", bootstrap,
         "--redis-url", redis_url, "--topic", topic, "--log", str(tmp_path / "workers.log")],
        env=cli_env(WATCHTOWER__WORKERS__GROUP=group, WATCHTOWER__WORKERS__SESSION_TIMEOUT="6s",
                    WATCHTOWER__WORKERS__MAX_POLL_INTERVAL="10s"),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    client = redis.Redis.from_url(redis_url)
    store = EnricherStore(client, group, topic)
    try:
        ends = end_offsets(bootstrap, topic)
        wait_for(
            lambda: store.applied_offsets(ends) == {p: e - 1 for p, e in ends.items()},
            90,
            "the workers to catch up",
        )
        assert len(set(store.owners().values())) == 2
        time.sleep(0.5)
        workers.send_signal(signal.SIGTERM)
        _, err = workers.communicate(timeout=60)
    finally:
        if workers.poll() is None:
            workers.kill()
            workers.wait()
        client.close()
    assert workers.returncode == 0, err
    assert "workers stopped" in err
    assert store.stats()["applied"] == doc["counts"]["valid"] + doc["counts"]["late"]
    assert committed(bootstrap, topic, group) == ends
