"""Helpers shared by the lag integration tests: exact producing, committing, awaiting conditions."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from watchtower.collectors.kafka_lag.collector import KafkaLagCollector
from watchtower.collectors.kafka_lag.config import KafkaLagConfig


def produce(
    bootstrap: str, topic: str, per_partition: dict[int, int], timestamp_ms: int | None = None
) -> None:
    """One record per batch, so tansu's ListOffsets high watermark is exact (see watchtower/stack/broker.py)."""
    p = Producer({"bootstrap.servers": bootstrap, "batch.num.messages": 1, "linger.ms": 0})
    for partition, n in per_partition.items():
        for i in range(n):
            kwargs: dict[str, Any] = {"timestamp": timestamp_ms} if timestamp_ms is not None else {}
            p.produce(topic, value=f"{i}".encode(), partition=partition, **kwargs)
    assert p.flush(15) == 0


def commit(bootstrap: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
    finally:
        c.close()


def lag_collector(bootstrap: str, group: str, **overrides: Any) -> KafkaLagCollector:
    cfg = KafkaLagConfig(groups_allow=[group], interval=1, timeout=3, **overrides)
    return KafkaLagCollector(cfg, {"bootstrap.servers": bootstrap})


def value(reading, metric: str, **lbl: object) -> float | None:
    key = tuple(sorted((k, str(v)) for k, v in lbl.items()))
    return reading.values(metric).get(key)


def await_condition(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Re-check until `check()` returns something truthy; the wait between checks is an Event wait."""
    import threading

    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        pause.wait(interval)
