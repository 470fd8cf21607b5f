"""Fixtures for the Spark job's tests: one SparkSession per test session, private scratch dirs, a producer.

Scratch data lives in a mkdtemp dir, not pytest's tmp_path: concurrent pytest sessions on this machine
rotate each other's numbered basetemp dirs away, which a minutes-long Spark test cannot survive.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from pipelines.events import encode, new_event


@pytest.fixture
def scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="wt-spark-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def spark():
    from pipelines.spark.job import local_session

    session = local_session(shuffle_partitions=2)
    yield session
    session.stop()


class OrderProducer:
    """Produces raw values to chosen partitions and remembers what went where."""

    def __init__(self, bootstrap: str, topic: str):
        self.topic = topic
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self.markers = Producer({"bootstrap.servers": bootstrap, "batch.num.messages": 1, "linger.ms": 0})
        self.sent: list[tuple[int, bytes | None]] = []

    def send(self, value: bytes | None, partition: int, key: bytes = b"u") -> None:
        self.producer.produce(self.topic, value=value, key=key, partition=partition)
        self.sent.append((partition, value))

    def event(
        self, partition: int, t_ms: int, user: str = "u1", amount: float = 1.0, event_id: str | None = None
    ) -> bytes:
        value = encode(new_event(user, amount, "paid", t_ms, event_id=event_id))
        self.send(value, partition, user.encode())
        return value

    def flush(self) -> None:
        assert self.producer.flush(30) == 0

    def end_markers(self, partitions: int) -> None:
        """One single-record batch per partition, so tansu's ListOffsets reports the true end."""
        self.flush()
        for p in range(partitions):
            self.markers.produce(
                self.topic, encode(new_event("marker", 0, "marker", int(time.time() * 1000))), partition=p
            )
            assert self.markers.flush(30) == 0
            self.sent.append((p, None))


@pytest.fixture
def order_producer(bootstrap: str) -> Callable[[str], OrderProducer]:
    return lambda topic: OrderProducer(bootstrap, topic)


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "wt-spark-test-probe"})
    try:
        return {
            p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)
        }
    finally:
        c.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return {
            tp.partition: tp.offset
            for tp in c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        }
    finally:
        c.close()


@pytest.fixture
def wait_for_group() -> Callable[..., None]:
    return _wait_for_group


def _wait_for_group(
    bootstrap: str, group: str, topic: str, partitions: int, timeout: float, alive: Callable[[], bool]
) -> None:
    """Until the group's committed offsets reach every partition's end (fetch high watermark)."""
    ends = end_offsets(bootstrap, topic, partitions)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise AssertionError("the Spark job stopped before catching up")
        got = committed(bootstrap, group, topic, partitions)
        if all(got.get(p, -1) >= end for p, end in ends.items()):
            return
        time.sleep(1)
    raise AssertionError(
        f"group {group} committed {committed(bootstrap, group, topic, partitions)}, ends {ends}"
    )
