"""The runner's fault log: what `ScenarioRunner.run` records around each fault, on the real Redis the test
session starts; the `chaos` collector reads it back as watchtower_chaos_fault_active."""

from __future__ import annotations

import time
import uuid

import redis

from watchtower.chaos.runner import FaultLog
from watchtower.collectors.chaos_faults import ChaosFaultsCollector, ChaosFaultsConfig, decode


def active(redis_url: str, key: str) -> dict[tuple[str, str], float]:
    c = ChaosFaultsCollector(ChaosFaultsConfig(key=key), redis_url)
    try:
        return {
            (dict(s.labels)["scenario"], dict(s.labels)["fault"]): s.value
            for s in c.collect(time.time()).samples
        }
    finally:
        c.close()


def test_a_fault_is_active_between_its_start_and_its_end(redis_url: str) -> None:
    key = f"wt:test:faultlog:{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    try:
        log = FaultLog(redis_url, "run1", "redis-pause", key=key)
        log.start(0, "redis_pause", 0)
        log.start(1, "kill_daemon", 1)
        assert active(redis_url, key) == {
            ("redis-pause", "redis_pause"): 1.0,
            ("redis-pause", "kill_daemon"): 1.0,
        }
        log.end(0)
        assert active(redis_url, key)[("redis-pause", "redis_pause")] == 0.0
        # a step started again (`every`) ends its previous record; close() ends whatever still runs
        log.start(1, "kill_daemon", 1)
        records = [decode(v) for v in client.hgetall(key).values()]
        assert sorted(r.ended_at is None for r in records) == [False, False, True]
        log.close()
        assert active(redis_url, key) == {
            ("redis-pause", "redis_pause"): 0.0,
            ("redis-pause", "kill_daemon"): 0.0,
        }
        assert all(decode(v).run == "run1" for v in client.hgetall(key).values())
    finally:
        client.delete(key)
        client.close()


def test_an_unreachable_redis_does_not_fail_the_run() -> None:
    log = FaultLog("redis://127.0.0.1:1/0", "run1", "s", timeout=0.2)
    started = time.monotonic()
    log.start(0, "broker_down", 0)
    log.end(0)
    log.close()
    assert time.monotonic() - started < 5
    FaultLog(None, "run1", "s").start(0, "x", 0)  # no Redis configured: nothing recorded, nothing raised
