"""Read the sinks back for the conservation verdict (`verdict.py`): the Delta `events`, `late` and `dlq`
tables and the DLQ topic, each row at the source (partition, offset) it came from.

Blocking I/O; raises what deltalake and confluent-kafka raise. Only the offset columns (and id / reason)
are read. A table that does not exist yet holds nothing. `read_until` polls while the pipeline catches up
(Delta trails Spark's commit by at most one batch while the job runs) and returns the first passing
verdict, or the last one at the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition
from deltalake import DeltaTable

from watchtower.chaos.verdict import Conservation, Expected, Found, Row, judge
from watchtower.kafka.clients import assigned_consumer


def _delta_rows(path: Path, table: str, cols: tuple[str, str, str], topic: str | None = None) -> list[Row]:
    if not DeltaTable.is_deltatable(str(path)):
        return []
    wanted = list(cols) + (["source_topic"] if topic is not None else [])
    t = DeltaTable(str(path)).to_pyarrow_table(columns=wanted)
    parts, offsets, third = (t.column(c).to_pylist() for c in cols)
    topics = t.column("source_topic").to_pylist() if topic is not None else None
    out = []
    for i, (p, o, x) in enumerate(zip(parts, offsets, third, strict=True)):
        if topics is not None and topics[i] != topic:
            continue
        if table == "dlq":
            out.append(Row(table, int(p), int(o), reason=x))
        else:
            out.append(Row(table, int(p), int(o), event_id=x))
    return out


def delta_rows(delta_root: Path, topic: str) -> list[Row]:
    """Rows of `events`, `late` (kafka_partition, kafka_offset, event_id) and `dlq` (source offsets and
    failure_reason, rows of `topic` only)."""
    root = Path(delta_root)
    return (
        _delta_rows(root / "events", "events", ("kafka_partition", "kafka_offset", "event_id"))
        + _delta_rows(root / "late", "late", ("kafka_partition", "kafka_offset", "event_id"))
        + _delta_rows(
            root / "dlq", "dlq", ("source_partition", "source_offset", "failure_reason"), topic=topic
        )
    )


def dlq_topic_rows(
    conf: dict[str, Any], dlq_topic: str, source_topic: str, timeout: float = 30.0
) -> list[Row]:
    """Every DLQ-topic record from the start to the end (partition EOF, which a fetch reports exactly) whose
    `source_topic` header is `source_topic`, at its `source_partition` / `source_offset` headers. A resend of
    a batch's DLQ records (at-least-once, see `pipelines/spark/kafka_dlq.py`) carries the same `batch_id`
    header and counts once."""
    c = assigned_consumer(
        {k: v for k, v in conf.items() if k != "group.id"},
        f"watchtower-chaos-readback-{time.time_ns()}",
        "chaos-readback",
        **{"enable.partition.eof": True},
    )
    out: list[Row] = []
    seen: set[tuple[str, str, str]] = set()
    try:
        meta = c.list_topics(dlq_topic, timeout=10).topics.get(dlq_topic)
        if meta is None or meta.error is not None or not meta.partitions:
            return out
        parts = sorted(meta.partitions)
        c.assign([TopicPartition(dlq_topic, p, OFFSET_BEGINNING) for p in parts])
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(at_end) < len(parts):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"reading {dlq_topic} back: no end of partitions {sorted(set(parts) - at_end)} within {timeout:.0f}s"
                )
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(m.partition())
                continue
            at_end.discard(m.partition())
            h = {k: (v or b"").decode(errors="replace") for k, v in (m.headers() or [])}
            if h.get("source_topic") != source_topic or "source_offset" not in h:
                continue
            key = (h.get("source_partition", ""), h["source_offset"], h.get("batch_id", ""))
            if key in seen:
                continue
            seen.add(key)
            out.append(
                Row(
                    "dlq_topic",
                    int(h["source_partition"]),
                    int(h["source_offset"]),
                    reason=h.get("failure_reason"),
                )
            )
    finally:
        c.close()
    return out


def read_found(
    delta_root: Path, topic: str, conf: dict[str, Any] | None = None, dlq_topic: str | None = None
) -> Found:
    rows = delta_rows(delta_root, topic)
    read_topic = conf is not None and dlq_topic is not None
    if read_topic:
        rows += dlq_topic_rows(conf, dlq_topic, topic)
    return Found.of(rows, dlq_topic_read=read_topic)


def read_until(
    expected: Iterable[Expected],
    read: Callable[[], Found],
    timeout: float,
    complete: bool = False,
    interval: float = 1.0,
) -> Conservation:
    """Judge, re-reading every `interval` until the verdict passes or `timeout` passes (the last verdict)."""
    expected = list(expected)
    deadline = time.monotonic() + timeout
    while True:
        verdict = judge(expected, read(), complete=complete)
        if verdict.ok or time.monotonic() >= deadline:
            return verdict
        time.sleep(interval)
