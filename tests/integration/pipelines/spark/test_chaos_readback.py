"""Conservation by read-back through the real Spark job, and proof that the verdict can fail.

Records go in through the chaos `Injector` (a normal producer, `chaos` header, (partition, offset) from the
delivery reports): valid, exact duplicates, every kind of malformed, a year-ahead event, late events once
the watermark exists, markers. The verdict reads the Delta tables and the DLQ topic back.

A deliberately broken processor drops one valid event per batch as a "duplicate": its `batches` rows still
add up (input = sink + dlq + late + duplicate + control), yet the read-back names each lost record.
"""

from __future__ import annotations

import threading
import time
import uuid

import pyarrow as pa
import pytest

from pipelines.events import encode, new_event
from pipelines.spark.delta_sinks import DeltaSinks
from pipelines.spark.job import SparkJob, delta_root
from pipelines.spark.processing import (
    BatchContext,
    BatchResult,
    SeenLookup,
    process,
    slide_buckets,
    sliding_windows,
)
from watchtower.chaos.inject import Injector
from watchtower.chaos.readback import read_found, read_until
from watchtower.config.models import KafkaConfig, PipelineConfig

pytestmark = [pytest.mark.integration, pytest.mark.spark]

PARTITIONS = 2
HOUR_MS = 3600 * 1000
MALFORMED = {
    "bad_json": b'{"event_id": "x", ',
    "empty": None,
    "not_an_object": b"[1, 2]",
    "missing_field": b'{"event_id":"m","order_id":"o","amount":1,"event_type":"paid","event_time":"2026-01-01T00:00:00.000Z"}',
    "wrong_type": b'{"event_id":"w","order_id":"o","user_id":"u","amount":"1","event_type":"paid","event_time":"2026-01-01T00:00:00.000Z"}',
    "bad_value": b'{"event_id":"n","order_id":"o","user_id":"u","amount":-1,"event_type":"paid","event_time":"2026-01-01T00:00:00.000Z"}',
    "unknown_event_type": b'{"event_id":"t","order_id":"o","user_id":"u","amount":1,"event_type":"teleported","event_time":"2026-01-01T00:00:00.000Z"}',
    "oversized": b'{"pad":"' + b"x" * 70_000 + b'"}',
    "bad_json:non_utf8": b"\xff\xfe\xfd not utf-8",
}


class DropsOneValidEventPerBatch:
    """The broken variant: per batch, the first sink row is counted as a duplicate instead of stored."""

    def __init__(self) -> None:
        self.dropped: list[tuple[int, int]] = []

    def __call__(self, raw: pa.Table, ctx: BatchContext, seen: SeenLookup) -> BatchResult:
        r = process(raw, ctx, seen)
        if r.sink.num_rows == 0:
            return r
        first = r.sink.slice(0, 1).to_pylist()[0]
        self.dropped.append((first["kafka_partition"], first["kafka_offset"]))
        sink = r.sink.slice(1)
        return BatchResult(
            r.batch_id,
            r.input_rows,
            sink,
            r.dlq,
            r.late,
            r.control,
            r.duplicate_rows + 1,
            r.max_event_time_ms,
            sliding_windows(sink, ctx.window_length_ms, ctx.window_slide_ms),
            slide_buckets(sink, ctx.window_slide_ms),
        )


def inject_and_run(spark, pipeline, bootstrap, redis_url, wait_for_group, processor=process) -> Injector:
    inj = Injector(
        KafkaConfig(), bootstrap, pipeline.topic, scenario="readback-test", run_id=uuid.uuid4().hex[:8]
    )
    now = int(time.time() * 1000)
    # phase 1: valid events, exact duplicates, every kind of malformed value, one year-ahead event
    for i in range(120):
        ev = new_event(f"u{i % 9}", 1.0, "paid", now - (i % 20) * 1000)
        inj.send(encode(ev), ev["user_id"].encode(), "valid", ("events",), event_id=ev["event_id"])
        if i % 10 == 0:
            inj.send(encode(ev), ev["user_id"].encode(), "duplicate", ("none",), event_id=ev["event_id"])
    for sub, value in MALFORMED.items():
        inj.send(value, b"u", f"malformed:{sub}", ("dlq",), reason=sub.split(":")[0])
    future = new_event("skewed", 1.0, "paid", now + 365 * 24 * HOUR_MS)
    inj.send(
        encode(future), b"skewed", "future", ("dlq",), reason="future_event_time", event_id=future["event_id"]
    )
    inj.end_markers(PARTITIONS)

    job = SparkJob(pipeline, {"bootstrap.servers": bootstrap}, redis_url, processor=processor)
    stop, errors = threading.Event(), []

    def run() -> None:
        try:
            job.run(spark, stop)
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    try:
        wait_for_group(bootstrap, pipeline.consumer_group, pipeline.topic, PARTITIONS, 240, runner.is_alive)
        # phase 2: the watermark now exists; events 3 h old are late, a fresh copy of a phase-1 event is a duplicate
        now = int(time.time() * 1000)
        for i in range(30):
            ev = new_event(f"u{i % 9}", 1.0, "paid", now - 3 * HOUR_MS)
            inj.send(encode(ev), ev["user_id"].encode(), "late", ("late",), event_id=ev["event_id"])
        for i in range(60):
            ev = new_event(f"u{i % 9}", 2.0, "created", now)
            inj.send(encode(ev), ev["user_id"].encode(), "valid", ("events",), event_id=ev["event_id"])
        inj.end_markers(PARTITIONS)
        wait_for_group(bootstrap, pipeline.consumer_group, pipeline.topic, PARTITIONS, 240, runner.is_alive)
    finally:
        stop.set()
        runner.join(120)
        inj.close()
    assert not errors, errors
    assert not inj.failed
    return inj


def make_pipeline(scratch, topic_factory, group_factory) -> PipelineConfig:
    return PipelineConfig(
        topic=topic_factory("orders", PARTITIONS),
        dlq_topic=topic_factory("orders-dlq", 1),
        data_dir=scratch,
        consumer_group=group_factory("spark"),
        trigger_interval=0.2,
        progress_stream=f"test:readback:{uuid.uuid4().hex[:6]}",
    )


def found(pipeline: PipelineConfig, bootstrap: str):
    return read_found(
        delta_root(pipeline), pipeline.topic, {"bootstrap.servers": bootstrap}, pipeline.dlq_topic
    )


def test_every_injected_record_is_where_the_contract_puts_it(
    spark, scratch, bootstrap, redis_url, topic_factory, group_factory, wait_for_group
) -> None:
    pipeline = make_pipeline(scratch, topic_factory, group_factory)
    inj = inject_and_run(spark, pipeline, bootstrap, redis_url, wait_for_group)
    verdict = read_until(inj.expected, lambda: found(pipeline, bootstrap), timeout=30, complete=True)
    assert verdict.ok, verdict.summary()
    assert verdict.checked == inj.sent == 120 + 12 + len(MALFORMED) + 1 + 30 + 60 + 2 * PARTITIONS
    assert verdict.kinds["valid"].found == 180 and verdict.kinds["late"].found == 30
    assert verdict.read["dlq_topic"] == len(MALFORMED) + 1


def test_a_pipeline_that_drops_a_valid_event_per_batch_fails_the_verdict_naming_it(
    spark, scratch, bootstrap, redis_url, topic_factory, group_factory, wait_for_group
) -> None:
    pipeline = make_pipeline(scratch, topic_factory, group_factory)
    broken = DropsOneValidEventPerBatch()
    inj = inject_and_run(spark, pipeline, bootstrap, redis_url, wait_for_group, processor=broken)
    assert broken.dropped

    # the job's own counters still add up: the check the demo used to make cannot see the loss
    batches = (
        DeltaSinks(delta_root(pipeline), "reader").open().table("batches").to_pyarrow_table().to_pylist()
    )
    for b in batches:
        assert (
            b["input_rows"]
            == b["sink_rows"] + b["dlq_rows"] + b["late_rows"] + b["duplicate_rows"] + b["control_rows"]
        )
    assert sum(b["input_rows"] for b in batches) == inj.sent

    verdict = read_until(inj.expected, lambda: found(pipeline, bootstrap), timeout=5, complete=True)
    assert not verdict.ok
    valid = verdict.kinds["valid"]
    assert valid.missing == len(broken.dropped) and valid.extra == 0
    assert {(a.partition, a.offset) for a in valid.first_missing} <= set(broken.dropped)
    first = verdict.first_missing()
    assert (first.partition, first.offset) in broken.dropped
    assert (
        f"partition {first.partition} offset {first.offset}: expected events, found nothing"
        in verdict.summary()
    )
    assert all(k.ok for name, k in verdict.kinds.items() if name != "valid")
