"""The skew guard through the real Spark job: one event stamped a year ahead must not poison the watermark.

Before the guard, that one event moved the running max a year ahead and every on-time event after it
(200 of 200) went to `late`. Now it goes to the DLQ as `future_event_time` and the rest to `events`.
Counted from what the Delta tables and the DLQ topic hold.

With the guard switched off (a bound of three years) the poisoning happens, and the daemon's signals see
it: the `pipeline_outcomes` collector reads the job's progress stream and the default rules
`late-share-high` and `watermark-ahead-of-clock` breach; with the guard on they stay quiet.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from pipelines.events import FUTURE_EVENT_TIME
from pipelines.spark.delta_sinks import DeltaSinks
from pipelines.spark.job import SparkJob, delta_root
from watchtower.collectors.pipeline_outcomes import PipelineOutcomesCollector, PipelineOutcomesConfig
from watchtower.config.models import PipelineConfig
from watchtower.rules.config import evaluate_all, load_rules

pytestmark = [pytest.mark.integration, pytest.mark.spark]

PARTITIONS = 2
RULES = Path(__file__).resolve().parents[4] / "alerts"
YEAR_MS = 365 * 24 * 3600 * 1000


def run_year_ahead_then_on_time(
    spark, pipeline, bootstrap, redis_url, prod, wait_for_group
) -> tuple[dict, set[str]]:
    """One event a year ahead (handled alone), then 200 on-time events; returns the first and the ids of the rest."""
    topic = pipeline.topic
    future = orjson.loads(prod.event(0, int(time.time() * 1000) + YEAR_MS, user="skewed"))
    prod.end_markers(PARTITIONS)

    job = SparkJob(pipeline, {"bootstrap.servers": bootstrap}, redis_url)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            job.run(spark, stop)
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    on_time: set[str] = set()
    try:
        # the year-ahead event is handled in a batch of its own before any on-time event arrives
        wait_for_group(bootstrap, pipeline.consumer_group, topic, PARTITIONS, 240, runner.is_alive)
        now = int(time.time() * 1000)
        for i in range(200):
            on_time.add(
                orjson.loads(prod.event(i % PARTITIONS, now - (i % 30) * 1000, user=f"u{i % 7}"))["event_id"]
            )
        prod.end_markers(PARTITIONS)
        wait_for_group(bootstrap, pipeline.consumer_group, topic, PARTITIONS, 240, runner.is_alive)
    finally:
        stop.set()
        runner.join(120)
    assert not errors, errors
    return future, on_time


def signals(pipeline: PipelineConfig, redis_url: str, timeout: float = 30.0) -> tuple[dict, set[str]]:
    """The pipeline_outcomes reading once the progress stream has caught up with the run (every record
    counted as input, the watermark published), and the default rules that breach on it. Spark's listener
    publishes asynchronously: the sinks can be complete before the last batch's progress entry is."""
    collector = PipelineOutcomesCollector(
        PipelineOutcomesConfig(window=600), redis_url, pipeline.progress_stream
    )
    deadline = time.monotonic() + timeout
    try:
        while True:
            now = time.time()
            reading = collector.collect(now)
            values = {(s.metric, dict(s.labels).get("outcome", "")): s.value for s in reading.samples}
            caught_up = (
                values.get(("watchtower_pipeline_records_total", "input"), 0) >= 201  # 1 future + 200 on time
                and ("watchtower_watermark_ahead_seconds", "") in values
            )
            if caught_up or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        collector.close()
    results, failed = evaluate_all(load_rules(RULES).rules, [reading], now)
    assert not failed
    return values, {r.rule for r in results if r.breaching}


def make_pipeline(scratch, topic_factory, group_factory, skew: float) -> PipelineConfig:
    p = PipelineConfig(
        topic=topic_factory("orders", PARTITIONS),
        dlq_topic=topic_factory("orders-dlq", 1),
        data_dir=scratch,
        consumer_group=group_factory("spark"),
        trigger_interval=0.2,
        progress_stream=f"test:skew:{uuid.uuid4().hex[:8]}:progress",  # not what an earlier run left
    )
    # model_copy skips validation on purpose: a bound above the watermark delay is refused in a config
    # (it would let a skewed event poison the watermark), and that is what the guard-off test needs.
    return p.model_copy(update={"max_future_skew": skew})


def test_a_year_ahead_event_goes_to_the_dlq_and_on_time_events_stay_on_time(
    spark, scratch, bootstrap, redis_url, topic_factory, group_factory, order_producer, wait_for_group
) -> None:
    pipeline = make_pipeline(scratch, topic_factory, group_factory, skew=300)
    dlq_topic = pipeline.dlq_topic
    future, on_time = run_year_ahead_then_on_time(
        spark, pipeline, bootstrap, redis_url, order_producer(pipeline.topic), wait_for_group
    )

    t = DeltaSinks(delta_root(pipeline), "reader").open()
    events = set(t.table("events").to_pyarrow_table().column("event_id").to_pylist())
    assert events == on_time and len(events) == 200
    assert t.table("late").to_pyarrow_table().num_rows == 0
    dlq = t.table("dlq").to_pyarrow_table().to_pylist()
    assert [(r["failure_reason"], orjson.loads(r["payload"])["event_id"]) for r in dlq] == [
        (FUTURE_EVENT_TIME, future["event_id"])
    ]
    batches = sorted(t.table("batches").to_pyarrow_table().to_pylist(), key=lambda b: b["batch_id"])
    # the watermark never went ahead of the wall clock (the year-ahead event did not count at all)
    assert all(b["max_event_time"] is None or b["max_event_time"].timestamp() < time.time() for b in batches)
    assert len(batches) >= 2 and batches[-1]["max_event_time"] is not None

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{dlq_topic}-check"})
    c.assign([TopicPartition(dlq_topic, 0, 0)])
    got, deadline = None, time.monotonic() + 30
    while got is None and time.monotonic() < deadline:
        m = c.poll(1)
        if m is not None and m.error() is None:
            got = m
    c.close()
    assert got is not None and dict(got.headers())["failure_reason"] == FUTURE_EVENT_TIME.encode()

    values, breaching = signals(pipeline, redis_url)
    assert values[("watchtower_pipeline_outcome_share", "late")] == 0.0
    assert values[("watchtower_watermark_ahead_seconds", "")] == 0.0
    assert values[("watchtower_pipeline_records_total", "dlq")] == 1
    assert not breaching & {"late-share-high", "watermark-ahead-of-clock"}


def test_without_the_guard_the_year_ahead_event_poisons_the_watermark_and_the_signals_see_it(
    spark, scratch, bootstrap, redis_url, topic_factory, group_factory, order_producer, wait_for_group
) -> None:
    pipeline = make_pipeline(scratch, topic_factory, group_factory, skew=3 * YEAR_MS / 1000)
    future, on_time = run_year_ahead_then_on_time(
        spark, pipeline, bootstrap, redis_url, order_producer(pipeline.topic), wait_for_group
    )
    t = DeltaSinks(delta_root(pipeline), "reader").open()
    assert set(t.table("late").to_pyarrow_table().column("event_id").to_pylist()) == on_time  # the old bug

    values, breaching = signals(pipeline, redis_url)
    assert values[("watchtower_pipeline_records_total", "late")] == 200
    assert values[("watchtower_pipeline_outcome_share", "late")] > 0.9  # 200 of 200 + 2 markers (control)
    assert values[("watchtower_watermark_ahead_seconds", "")] > 300 * 24 * 3600
    assert {"late-share-high", "watermark-ahead-of-clock"} <= breaching
