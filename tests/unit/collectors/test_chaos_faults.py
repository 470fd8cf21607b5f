"""The `chaos` collector: faults chaos runs record in Redis become watchtower_chaos_fault_active.

Pure parts as tables; the writer (the functions `watchtower chaos run` calls) and the collector against the
real Redis the test session starts, each test on a key of its own.
"""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from watchtower.collectors.base import BuildContext
from watchtower.collectors.chaos_faults import (
    METRIC,
    ChaosFaultsCollector,
    ChaosFaultsConfig,
    FaultRecord,
    build,
    decode,
    encode,
    expired,
    fault_samples,
    record_end,
    record_start,
)
from watchtower.collectors.redis_stream import RedisUnavailable
from watchtower.contract import CHAOS_FAULTS_MAX, CHAOS_FAULTS_RETENTION
from watchtower.core.types import labels

NOW = 1_800_000_000.0


def values(samples) -> dict[tuple[str, str], float]:
    return {(dict(s.labels)["scenario"], dict(s.labels)["fault"]): s.value for s in samples}


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([], {}),
        ([FaultRecord("r", "s", "broker-down", NOW - 5)], {("s", "broker-down"): 1.0}),
        ([FaultRecord("r", "s", "broker-down", NOW - 50, NOW - 20)], {("s", "broker-down"): 0.0}),
        # one of two runs of the same fault still running: active
        (
            [
                FaultRecord("r1", "s", "kill", NOW - 90, NOW - 80),
                FaultRecord("r2", "s", "kill", NOW - 10),
            ],
            {("s", "kill"): 1.0},
        ),
        # ended longer ago than the retention: gone; never ended and started before it: gone too
        ([FaultRecord("r", "s", "kill", NOW - 200, NOW - 101)], {}),
        ([FaultRecord("r", "s", "kill", NOW - 101)], {}),
        (
            [FaultRecord("r", "a", "kill", NOW - 5), FaultRecord("r", "b", "pause", NOW - 5, NOW - 1)],
            {("a", "kill"): 1.0, ("b", "pause"): 0.0},
        ),
    ],
)
def test_fault_samples(records, expected) -> None:
    samples = fault_samples(records, NOW, retention=100)
    assert values(samples) == expected
    assert all(s.metric == METRIC for s in samples)


def test_expired_drops_past_the_retention_and_beyond_the_newest() -> None:
    recs = {f"f{i}": FaultRecord("r", "s", "k", NOW - i, NOW - i) for i in range(6)}
    assert sorted(expired(recs, NOW, retention=3.5, keep=10)) == ["f4", "f5"]
    assert sorted(expired(recs, NOW, retention=100, keep=2)) == ["f2", "f3", "f4", "f5"]


def test_a_record_round_trips_and_an_unreadable_one_is_none() -> None:
    rec = FaultRecord("r", "s", "k", 1.5, None)
    assert decode(encode(rec)) == rec and decode(encode(rec).encode()) == rec
    assert decode(b"not json") is None and decode('{"run": "r"}') is None


@pytest.fixture
def client(redis_url: str):
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


@pytest.fixture
def key(client: redis.Redis):
    k = f"wt:test:chaos:{uuid.uuid4().hex[:8]}"
    yield k
    client.delete(k)


def test_recorded_faults_become_series_on_real_redis(redis_url: str, client, key: str) -> None:
    collector = ChaosFaultsCollector(ChaosFaultsConfig(key=key, retention=600), redis_url)
    try:
        assert collector.collect(NOW).samples == ()  # nothing recorded: no series
        t0 = time.time()
        field = record_start(client, "run1", "broker-outage", "broker_down", 0, t0, key=key)
        [s] = collector.collect(t0 + 1).samples
        assert (s.metric, s.labels, s.value) == (
            METRIC,
            labels(scenario="broker-outage", fault="broker_down"),
            1.0,
        )
        record_end(client, field, t0 + 2, key=key)
        [s] = collector.collect(t0 + 3).samples
        assert s.value == 0.0
        assert collector.collect(t0 + 2 + 601).samples == ()  # past the collector's retention
        # the key expires when nothing is written for the retention: it cannot outlive it
        assert 0 < client.ttl(key) <= CHAOS_FAULTS_RETENTION
        stored = decode(client.hget(key, field))
        assert stored == FaultRecord("run1", "broker-outage", "broker_down", t0, t0 + 2)
    finally:
        collector.close()


def test_each_write_prunes_what_is_past_the_retention(client, key: str) -> None:
    now = time.time()
    old = record_start(client, "old", "s", "k", 0, now - CHAOS_FAULTS_RETENTION - 10, key=key)
    client.hset(key, "garbage", b"{")  # unreadable: skipped by readers
    assert client.hexists(key, old)
    new = record_start(client, "new", "s", "k", 0, now, key=key)
    assert not client.hexists(key, old) and client.hexists(key, new)
    assert CHAOS_FAULTS_MAX >= 100


def test_an_unreachable_redis_marks_the_collector_down() -> None:
    collector = build(ChaosFaultsConfig(timeout=0.5), BuildContext(redis_url="redis://127.0.0.1:1/0"))
    assert collector is not None
    with pytest.raises(RedisUnavailable, match="reading the chaos faults"):
        collector.collect(NOW)
    collector.close()
    assert build(ChaosFaultsConfig(enabled=False), BuildContext(redis_url="redis://x:1/0")) is None
    assert build(ChaosFaultsConfig(), BuildContext()) is None
