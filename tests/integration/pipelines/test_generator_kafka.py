"""The generator against the real embedded broker: rate, manifest vs what the topic holds, markers."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from pipelines.events import CONTROL_TYPES, validate
from pipelines.generator import DUPLICATE, LATE, MALFORMED, MALFORMED_KINDS, MARKER, VALID
from pipelines.produce import Generator
from watchtower.config.models import GeneratorConfig

pytestmark = pytest.mark.integration


def read_topic(
    bootstrap: str, topic: str, partitions: int, timeout: float = 60.0
) -> list[tuple[int, int, bytes]]:
    """Every record of the topic as (partition, offset, value), reading each partition to its end.

    The end comes from a fetch (`position` after the last record), not ListOffsets, so this is exact
    even where the embedded broker's ListOffsets is not.
    """
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "unused",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out: list[tuple[int, int, bytes]] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(at_end) < partitions and time.monotonic() < deadline:
            for m in c.consume(1000, 0.5):
                if m.error() is None:
                    out.append((m.partition(), m.offset(), m.value()))
                    at_end.discard(m.partition())
                elif m.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(m.partition())
    finally:
        c.close()
    assert len(at_end) == partitions, "did not reach the end of every partition"
    return out


def classify(
    records: list[tuple[int, int, bytes]], now_ms: int, late_by_ms: int
) -> tuple[Counter, Counter, dict[str, set]]:
    """What a reader sees: kinds as the manifest names them, malformed by reason, ids by kind."""
    kinds: Counter = Counter()
    reasons: Counter = Counter()
    ids: dict[str, set] = {VALID: set(), LATE: set(), DUPLICATE: set(), MALFORMED: set()}
    seen: set[str] = set()
    for _, _, value in sorted(records, key=lambda r: (r[0], r[1])):
        v = validate(value)
        if not v.ok:
            kinds[MALFORMED] += 1
            reasons[v.reason.split(":")[0]] += 1
            continue
        event = v.event
        if event["event_type"] in CONTROL_TYPES:
            kinds[event["event_type"]] += 1
            continue
        kind = (
            DUPLICATE
            if event["event_id"] in seen
            else (LATE if v.event_time_ms < now_ms - late_by_ms / 2 else VALID)
        )
        seen.add(event["event_id"])
        kinds[kind] += 1
        ids[kind].add(event["event_id"])
    return kinds, reasons, ids


def test_rate_is_held_over_a_short_run(bootstrap, topic_factory):
    topic = topic_factory("gen-rate", partitions=3)
    rate, duration = 5000.0, 3.0
    m = Generator(GeneratorConfig(rate=rate), bootstrap, topic=topic).run(duration=duration)
    sent = m.sent - m.counts[MARKER]
    assert sent == pytest.approx(rate * duration, rel=0.05)
    assert m.delivered == m.sent and m.failed == 0 and m.pending == 0


def test_count_run_sends_exactly_count(bootstrap, topic_factory):
    topic = topic_factory("gen-count", partitions=2)
    m = Generator(GeneratorConfig(rate=1e6), bootstrap, topic=topic).run(count=7777)
    assert m.sent - m.counts[MARKER] == 7777 and m.delivered == m.sent


def test_manifest_matches_what_a_consumer_reads_back(bootstrap, topic_factory):
    partitions = 6
    topic = topic_factory("gen-manifest", partitions=partitions)
    cfg = GeneratorConfig(
        rate=50_000, users=500, duplicate_ratio=0.05, malformed_ratio=0.05, late_ratio=0.05, late_by=3600
    )
    m = Generator(cfg, bootstrap, topic=topic, seed=5, track_ids=True).run(count=20_000)
    now_ms = int(time.time() * 1000)

    records = read_topic(bootstrap, topic, partitions)
    kinds, reasons, ids = classify(records, now_ms, 3_600_000)

    assert len(records) == m.sent == m.delivered
    assert m.failed == 0
    assert kinds[MARKER] == m.counts[MARKER] == partitions
    for kind in (VALID, LATE, DUPLICATE, MALFORMED):
        assert kinds[kind] == m.counts[kind], kind
    assert {k: reasons[v] for k, v in MALFORMED_KINDS.items() if v != "bad_value:amount"} == {
        k: n for k, n in m.malformed.items() if k != "negative_amount"
    }
    assert reasons["bad_value"] == m.malformed["negative_amount"]
    assert ids[VALID] == set(m.ids[VALID]) and ids[LATE] == set(m.ids[LATE])
    assert ids[DUPLICATE] == set(m.ids[DUPLICATE])
    # The fault mix holds its ratios (20k events: a few percent of slack).
    for kind in (DUPLICATE, MALFORMED, LATE):
        assert m.counts[kind] / 20_000 == pytest.approx(0.05, rel=0.15), kind


def test_markers_end_every_partition_and_make_list_offsets_exact(bootstrap, topic_factory):
    partitions = 6
    topic = topic_factory("gen-markers", partitions=partitions)
    m = Generator(GeneratorConfig(rate=1e6, users=100), bootstrap, topic=topic).run(count=30_000)
    assert m.counts[MARKER] == partitions

    records = read_topic(bootstrap, topic, partitions)
    last = {}
    for p, o, value in records:
        if o >= last.get(p, (-1, b""))[0]:
            last[p] = (o, value)
    assert all(validate(v).event["event_type"] == "marker" for _, v in last.values())

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    try:
        for p in range(partitions):
            low, high = c.get_watermark_offsets(
                TopicPartition(topic, p), timeout=10, cached=False
            )  # ListOffsets
            assert high == m.partitions[p] == last[p][0] + 1, f"partition {p}"
    finally:
        c.close()
