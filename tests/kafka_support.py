"""Plain helpers for tests that talk to the real broker (importable: `from kafka_support import ...`)."""

from __future__ import annotations

import itertools
import uuid

# Consumer-group settings that keep joins fast against tansu (defaults make a join wait minutes).
FAST_GROUP = {"session.timeout.ms": 6000, "max.poll.interval.ms": 10000, "heartbeat.interval.ms": 500}

_counter = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}-{uuid.uuid4().hex[:6]}"


def produce_exact(bootstrap: str, topic: str, per_partition: dict[int, int]) -> None:
    """One record per batch, so tansu's ListOffsets high watermark is exact (see watchtower/stack/broker.py)."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "batch.num.messages": 1, "linger.ms": 0})
    for partition, n in per_partition.items():
        for i in range(n):
            p.produce(topic, value=str(i).encode(), partition=partition)
    assert p.flush(15) == 0


def commit_offsets(bootstrap: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    """Commit these offsets for `group` as a consumer that has caught up (or not) would."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
    finally:
        c.close()
