"""The Spark job end to end: real tansu, real Redis, real Spark (local[2]).

conservation   every produced record ends in exactly one of sink / DLQ / late / duplicate / control
restart        the job is SIGKILLed mid-stream (Spark and all) and restarted from its checkpoint
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import pyarrow.compute as pc
import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition

from pipelines.events import encode, new_event
from pipelines.spark.delta_sinks import DeltaSinks
from pipelines.spark.job import SparkJob, app_id, delta_root
from watchtower.config.models import PipelineConfig

pytestmark = [pytest.mark.integration, pytest.mark.spark]

PARTITIONS = 3


def tables(pipeline: PipelineConfig) -> DeltaSinks:
    return DeltaSinks(delta_root(pipeline), "reader").open()


def redis_bucket_total(redis_client) -> int:
    total = 0
    for key in redis_client.scan_iter("wt:agg:*"):
        total += sum(int(v) for f, v in redis_client.hgetall(key).items() if f.startswith(b"c:"))
    return total


def read_dlq_topic(bootstrap: str, topic: str, expected: int) -> list:
    c = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"{topic}-check", "auto.offset.reset": "earliest"}
    )
    c.assign([TopicPartition(topic, 0, 0)])
    got, deadline = [], time.monotonic() + 30
    while len(got) < expected and time.monotonic() < deadline:
        m = c.poll(1)
        if m is not None and m.error() is None:
            got.append(m)
    c.close()
    return got


def test_conservation_malformed_late_and_duplicates(
    spark,
    scratch,
    bootstrap,
    redis_url,
    redis_client,
    topic_factory,
    group_factory,
    order_producer,
    wait_for_group,
) -> None:
    topic, dlq_topic = topic_factory("orders", PARTITIONS), topic_factory("orders-dlq", 1)
    pipeline = PipelineConfig(
        topic=topic,
        dlq_topic=dlq_topic,
        data_dir=scratch,
        consumer_group=group_factory("spark"),
        max_offsets_per_trigger=1500,
        trigger_interval=0.2,
        progress_stream="test:spark:progress",
    )
    prod = order_producer(topic)
    now = int(time.time() * 1000)
    valid: dict[str, bytes] = {}
    malformed = Counter()

    def valid_event(i: int, t: int) -> bytes:
        v = prod.event(i % PARTITIONS, t, user=f"u{i % 50}", amount=1.5)
        valid[orjson.loads(v)["event_id"]] = v
        return v

    # phase 1: on-time events, duplicates right after their original, every kind of malformed value
    in_batch_dups = 0
    for i in range(1200):
        v = valid_event(i, now - (i % 60) * 1000)
        if i % 12 == 0:
            prod.send(v, i % PARTITIONS)
            in_batch_dups += 1
    bad = {
        "bad_json": b'{"event_id": "x", ',
        "missing_field:user_id": b'{"event_id":"m","order_id":"o","amount":1,"event_type":"paid","event_time":"2026-01-01T00:00:00.000Z"}',
        "wrong_type:amount": encode({**new_event("u", 1, "paid", now), "amount": "12"}),
        "oversized": encode({**new_event("u", 1, "paid", now), "order_id": "x" * 70_000}),
        "empty": None,
        "unknown_event_type": encode(new_event("u", 1, "teleported", now)),
    }
    for n in range(5):
        for reason, value in bad.items():
            prod.send(value, n % PARTITIONS)
            malformed[reason] += 1
    canary = new_event("daemon", 0, "canary", now, event_id="canary-1")
    prod.send(encode(canary), 0)
    prod.flush()

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
    try:
        wait_for_group(bootstrap, pipeline.consumer_group, topic, PARTITIONS, 240, runner.is_alive)
        # phase 2: duplicates of phase-1 events (now in earlier batches), late events, more on-time events
        cross_dups = 0
        for n, v in enumerate(list(valid.values())[:100]):
            prod.send(v, n % PARTITIONS)
            cross_dups += 1
        late_ids = set()
        for i in range(50):
            v = prod.event(i % PARTITIONS, now - 3 * 3600 * 1000, user="late-user")
            late_ids.add(orjson.loads(v)["event_id"])
        for i in range(300):
            valid_event(i, now + 1000)
        prod.end_markers(PARTITIONS)
        wait_for_group(bootstrap, pipeline.consumer_group, topic, PARTITIONS, 240, runner.is_alive)
    finally:
        stop.set()
        runner.join(120)
    assert not errors, errors

    t = tables(pipeline)
    batches = t.table("batches").to_pyarrow_table().to_pylist()
    for b in batches:
        assert (
            b["input_rows"]
            == b["sink_rows"] + b["dlq_rows"] + b["late_rows"] + b["duplicate_rows"] + b["control_rows"]
        )
        assert b["status"] == "ok"
    total = {
        k: sum(b[k] for b in batches)
        for k in ("input_rows", "sink_rows", "dlq_rows", "late_rows", "duplicate_rows", "control_rows")
    }
    assert total == {
        "input_rows": len(prod.sent),
        "sink_rows": len(valid),
        "dlq_rows": sum(malformed.values()),
        "late_rows": len(late_ids),
        "duplicate_rows": in_batch_dups + cross_dups,
        "control_rows": 1 + PARTITIONS,
    }
    assert len({b["batch_id"] for b in batches}) == len(batches) >= 2

    events = t.table("events").to_pyarrow_table()
    ids = events.column("event_id").to_pylist()
    assert len(ids) == len(set(ids)) and set(ids) == set(valid)
    assert set(t.table("late").to_pyarrow_table().column("event_id").to_pylist()) == late_ids
    dlq = t.table("dlq").to_pyarrow_table()
    assert Counter(dlq.column("failure_reason").to_pylist()) == malformed
    assert pc.sum(t.table("aggregates").to_pyarrow_table().column("event_count")).as_py() == 5 * len(valid)

    records = read_dlq_topic(bootstrap, dlq_topic, sum(malformed.values()))
    assert Counter(dict(m.headers())["failure_reason"].decode() for m in records) == malformed
    assert all(
        {"batch_id", "source_partition", "source_offset", "source_topic"} <= set(dict(m.headers()))
        for m in records
    )

    assert redis_bucket_total(redis_client) == len(valid)
    assert redis_client.exists("wt:canary:canary-1") == 1
    e2e = redis_client.xrange("watchtower:e2e")
    assert sum(int(f[b"count"]) for _, f in e2e) == len(valid)
    progress = redis_client.xrange(pipeline.progress_stream)
    assert progress and {
        b"batch_id",
        b"input_rows",
        b"processed_rows_per_second",
        b"trigger_execution_ms",
    } <= set(progress[-1][1])


def _spark_cli(config: Path, bootstrap: str, redis_url: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    cmd = [
        sys.executable,
        "-m",
        "watchtower",
        "-c",
        str(config),
        "pipeline",
        "spark",
        "--bootstrap",
        bootstrap,
        "--redis-url",
        redis_url,
        *extra,
    ]
    return subprocess.Popen(
        cmd,
        env=env,
        cwd=Path(__file__).resolve().parents[4],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=open(config.parent / "spark.log", "ab"),
    )  # noqa: SIM115


def test_restart_after_sigkill_loses_nothing_and_writes_nothing_twice(
    scratch, bootstrap, redis_url, redis_client, topic_factory, group_factory, order_producer
) -> None:
    topic, dlq_topic = topic_factory("orders", PARTITIONS), topic_factory("orders-dlq", 1)
    pipeline = PipelineConfig(
        topic=topic,
        dlq_topic=dlq_topic,
        data_dir=scratch / "data",
        consumer_group=group_factory("spark"),
        max_offsets_per_trigger=1000,
        trigger_interval=0.2,
    )
    config = scratch / "watchtower.yaml"
    config.write_text(yaml.safe_dump({"pipeline": orjson.loads(pipeline.model_dump_json())}))
    prod = order_producer(topic)
    now = int(time.time() * 1000)
    ids = set()
    for i in range(6000):
        v = prod.event(i % PARTITIONS, now - (i % 120) * 1000, user=f"u{i % 40}")
        ids.add(orjson.loads(v)["event_id"])
        if i % 20 == 0:
            prod.send(v, i % PARTITIONS)
    prod.end_markers(PARTITIONS)

    first = _spark_cli(config, bootstrap, redis_url)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and first.poll() is None:
            try:
                if tables(pipeline).table("batches").to_pyarrow_table().num_rows >= 2:
                    break
            except Exception:
                pass  # tables not created yet
            time.sleep(0.3)
        assert first.poll() is None, "the first run exited by itself"
        done_before = tables(pipeline).table("batches").to_pyarrow_table().num_rows
        assert 2 <= done_before < 8, "the kill must land mid-stream"
    finally:
        os.killpg(
            first.pid, signal.SIGKILL
        )  # Spark's JVM and Python workers die with it, like a lost machine
        first.wait(30)

    second = _spark_cli(config, bootstrap, redis_url, "--until-idle", "5")
    try:
        assert second.wait(300) == 0
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)

    t = tables(pipeline)
    batches = t.table("batches").to_pyarrow_table().sort_by("batch_id").to_pylist()
    assert [b["batch_id"] for b in batches] == list(range(len(batches)))
    assert sum(b["input_rows"] for b in batches) == len(prod.sent)
    assert sum(b["sink_rows"] for b in batches) == len(ids)
    events = t.table("events").to_pyarrow_table().column("event_id").to_pylist()
    assert len(events) == len(set(events)) and set(events) == ids
    assert pc.sum(t.table("aggregates").to_pyarrow_table().column("event_count")).as_py() == 5 * len(ids)
    assert redis_bucket_total(redis_client) == len(ids)
    assert sum(int(f[b"count"]) for _, f in redis_client.xrange("watchtower:e2e")) == len(ids)
    assert t.table("events").transaction_version(app_id(pipeline)) == batches[-1]["batch_id"]
