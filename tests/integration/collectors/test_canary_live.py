"""The canary collector without a pipeline: sends, losses, a visible canary, and Redis going away.

The full round trip through the Spark job is in tests/integration/pipelines/spark/test_spark_collectors_live.py.
"""

from __future__ import annotations

import time

import pytest
import redis
from confluent_kafka import Consumer, TopicPartition

from pipelines.events import validate
from watchtower.collectors.canary import CanaryCollector, CanaryConfig
from watchtower.collectors.redis_stream import RedisUnavailable
from watchtower.core.types import labels

pytestmark = pytest.mark.integration


def test_canaries_go_to_every_partition_and_unseen_ones_are_lost(bootstrap, redis_url, topic_factory) -> None:
    topic = topic_factory("orders", 3)
    c = CanaryCollector(
        CanaryConfig(enabled=True, lost_after=1, timeout=5),
        {"bootstrap.servers": bootstrap},
        redis_url,
        topic,
    )
    tl = labels(topic=topic)
    try:
        r = c.collect(time.time())
        assert r.values("watchtower_canary_sent_total") == {tl: 3.0}
        assert r.values("watchtower_canary_pending") == {tl: 3.0}
        time.sleep(1.2)
        r = c.collect(time.time())  # the first round is overdue: lost; a second round goes out
        assert r.values("watchtower_canary_lost_total") == {tl: 3.0}
        assert r.values("watchtower_canary_sent_total") == {tl: 6.0}
    finally:
        c.close()
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"{topic}-check", "enable.partition.eof": True}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
    seen: dict[int, list] = {}
    eof = set()
    deadline = time.monotonic() + 20
    while len(eof) < 3 and time.monotonic() < deadline:
        m = consumer.poll(1)
        if m is None:
            continue
        if m.error():
            eof.add(m.partition())
            continue
        v = validate(m.value())
        assert v.ok and v.event["event_type"] == "canary"
        seen.setdefault(m.partition(), []).append(v.event["event_id"])
    consumer.close()
    assert {p: len(ids) for p, ids in seen.items()} == {0: 2, 1: 2, 2: 2}


def test_a_visible_canary_gives_its_latency(bootstrap, redis_url, redis_client, topic_factory) -> None:
    topic = topic_factory("orders", 1)
    c = CanaryCollector(
        CanaryConfig(enabled=True, mode="round_robin", timeout=5),
        {"bootstrap.servers": bootstrap},
        redis_url,
        topic,
        ids=iter(["canary-a", "canary-b"]).__next__,
    )
    try:
        t0 = time.time()
        c.collect(t0)
        redis_client.set("wt:canary:canary-a", int(t0 * 1000) + 2500)  # what the Spark job writes
        r = c.collect(t0 + 3)
        assert r.values("watchtower_canary_latency_seconds") == {labels(topic=topic, partition=0): 2.5}
        assert r.values("watchtower_canary_received_total") == {labels(topic=topic): 1.0}
    finally:
        c.close()


def test_redis_going_away_raises_and_pending_canaries_survive(bootstrap, own_redis, topic_factory) -> None:
    topic = topic_factory("orders", 1)
    c = CanaryCollector(
        CanaryConfig(enabled=True, timeout=1),
        {"bootstrap.servers": bootstrap},
        own_redis.url,
        topic,
        ids=iter(["canary-1", "canary-2", "canary-3"]).__next__,
    )
    try:
        t0 = time.time()
        c.collect(t0)
        own_redis.stop()
        with pytest.raises(RedisUnavailable):
            c.collect(t0 + 1)
        own_redis.start()
        redis.Redis.from_url(own_redis.url).set("wt:canary:canary-1", int(t0 * 1000) + 700)
        r = c.collect(t0 + 2)
        assert r.values("watchtower_canary_latency_seconds") == {labels(topic=topic, partition=0): 0.7}
    finally:
        c.close()
