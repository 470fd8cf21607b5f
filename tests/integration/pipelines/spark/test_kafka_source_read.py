"""The Kafka source's executor-side read against the real broker: one consumer per pass over many ranges."""

from __future__ import annotations

import pyarrow as pa
import pytest
from confluent_kafka import Producer

from pipelines.spark import kafka_source
from pipelines.spark.kafka_source import KafkaPartition, pack, read_ranges, unpack_arrow

pytestmark = pytest.mark.integration


@pytest.fixture
def topic(bootstrap, topic_factory) -> str:
    name = topic_factory("read", 3)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for part in range(3):
        for i in range(100):
            p.produce(name, b"p%d-%d" % (part, i), key=b"k", partition=part)
    p.flush(30)
    return name


def rng(topic: str, bootstrap: str, part: int, start: int, end: int) -> KafkaPartition:
    return KafkaPartition(topic, part, start, end, {"bootstrap.servers": bootstrap}, 30)


def test_every_range_of_a_task_is_read_exactly_with_one_consumer_per_pass(
    topic, bootstrap, monkeypatch
) -> None:
    monkeypatch.setattr(kafka_source, "ROWS_PER_ARROW_BATCH", 7)  # many chunks per partition
    ranges = [
        rng(topic, bootstrap, 0, 0, 50),
        rng(topic, bootstrap, 1, 10, 40),
        rng(topic, bootstrap, 2, 5, 5),
        rng(topic, bootstrap, 0, 50, 80),
    ]
    assert [
        [r.partition for r in g] for g in kafka_source._passes([r for r in ranges if r.end > r.start])
    ] == [[0, 1], [0]]
    batches = list(read_ranges(ranges))
    assert all(len(set(b.column(1).to_pylist())) == 1 for b in batches)  # one partition per batch
    got = sorted(
        (b.column(1)[i].as_py(), b.column(2)[i].as_py(), b.column(5)[i].as_py())
        for b in batches
        for i in range(b.num_rows)
    )
    expected = sorted(
        [(0, o, b"p0-%d" % o) for o in range(80)] + [(1, o, b"p1-%d" % o) for o in range(10, 40)]
    )
    assert got == expected
    assert max(b.num_rows for b in batches) == 7


def test_unpacked_chunks_come_out_in_partition_and_offset_order(topic, bootstrap) -> None:
    chunks = list(read_ranges([rng(topic, bootstrap, 2, 0, 30), rng(topic, bootstrap, 1, 0, 30)]))
    packed = [
        pack(b, b.column(1)[0].as_py()) for b in sorted(chunks, key=lambda b: -b.column(1)[0].as_py())
    ]  # p2 first
    table = unpack_arrow(packed)
    keys = list(zip(table.column("partition").to_pylist(), table.column("offset").to_pylist(), strict=True))
    assert keys == sorted(keys) and len(keys) == 60
    assert isinstance(table, pa.Table)
