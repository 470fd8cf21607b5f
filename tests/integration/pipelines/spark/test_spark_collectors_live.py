"""The daemon's pipeline collectors against the real Spark job (one run, one Spark session).

Canaries go through the real job next to business events: they must come back as latencies, be counted
as control rows, and never reach the sink table, the aggregates (Delta and Redis) or the e2e stream. The
Spark progress collector's trigger durations must be what Spark itself reported for that batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pyarrow.compute as pc
import pytest
import redis
from deltalake import DeltaTable

from pipelines.spark.job import SparkJob, delta_root
from watchtower.collectors.canary import CanaryCollector, CanaryConfig
from watchtower.collectors.e2e_latency import E2eLatencyCollector, E2eLatencyConfig
from watchtower.collectors.spark_progress import SparkProgressCollector, SparkProgressConfig
from watchtower.config.models import PipelineConfig
from watchtower.contract import CANARY_USER

pytestmark = [pytest.mark.integration, pytest.mark.spark]

BUSINESS = 60
ROUNDS = 3


@pytest.fixture
def running_job(
    spark, scratch, bootstrap, redis_url, redis_client, topic_factory
) -> Iterator[tuple[SparkJob, PipelineConfig]]:
    # redis_client empties the session's Redis first: e2e entries other tests left would count here too.
    topic = topic_factory("orders", 2)
    pipeline = PipelineConfig(
        topic=topic,
        partitions=2,
        dlq_topic=topic_factory("orders-dlq", 1),
        data_dir=scratch,
        consumer_group=f"{topic}-spark",
        progress_stream=f"wt:test:progress:{topic}",
        trigger_interval=0.5,
    )
    job = SparkJob(pipeline, {"bootstrap.servers": bootstrap}, redis_url)
    stop = threading.Event()
    runner = threading.Thread(target=job.run, args=(spark, stop), daemon=True)
    runner.start()
    yield job, pipeline
    stop.set()
    runner.join(60)


def until(condition, what: str, timeout: float = 120.0, step: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = condition()
        if got:
            return got
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


def test_canaries_latency_and_spark_progress_through_the_real_job(
    running_job, order_producer, bootstrap, redis_url
) -> None:
    job, pipeline = running_job
    r = redis.Redis.from_url(redis_url)
    producer = order_producer(pipeline.topic)
    now_ms = int(time.time() * 1000)
    for i in range(BUSINESS):
        producer.event(i % 2, now_ms - 1000, user=f"u{i % 5}")
    producer.flush()

    canary = CanaryCollector(
        CanaryConfig(enabled=True, lost_after=120, timeout=5),
        {"bootstrap.servers": bootstrap},
        redis_url,
        pipeline.topic,
    )
    e2e = E2eLatencyCollector(E2eLatencyConfig(window=600), redis_url)
    progress = SparkProgressCollector(SparkProgressConfig(), redis_url, pipeline.progress_stream)
    try:
        # Canaries end each partition with a single-record batch, so tansu's ListOffsets sees every event.
        for _ in range(ROUNDS):
            canary.collect(time.time())
            time.sleep(1.0)

        def all_visible():
            canary.check(time.time())  # no new round: only resolve what is pending
            return canary.reading(time.time()) if canary.received >= 2 * ROUNDS else None

        reading = until(all_visible, "every canary to become visible")
        assert canary.sent == 2 * ROUNDS and canary.lost == 0
        latencies = reading.values("watchtower_canary_latency_seconds")
        assert {dict(k)["partition"] for k in latencies} == {"0", "1"}
        assert all(0 < v < 60 for v in latencies.values()), latencies

        events = until(
            lambda: (
                (t := DeltaTable(str(delta_root(pipeline) / "events")).to_pyarrow_table()).num_rows
                >= BUSINESS
                and t
            ),
            "the business events in the sink",
        )
        # --- canaries are control rows, and nothing else --------------------------------------------
        assert events.num_rows == BUSINESS
        assert set(events.column("event_type").to_pylist()) == {"paid"}
        batches = DeltaTable(str(delta_root(pipeline) / "batches")).to_pyarrow_table()
        assert pc.sum(batches.column("control_rows")).as_py() == 2 * ROUNDS
        aggregates = DeltaTable(str(delta_root(pipeline) / "aggregates")).to_pyarrow_table()
        assert CANARY_USER not in set(aggregates.column("user_id").to_pylist())
        assert pc.sum(aggregates.column("event_count")).as_py() == BUSINESS * 5  # five sliding windows each
        for key in r.scan_iter("wt:agg:*"):
            assert not any(f.decode().endswith(CANARY_USER) for f in r.hkeys(key)), key
        for key in r.scan_iter("wt:visible:*"):
            assert not any(f.decode().startswith("canary-") for f in r.hkeys(key)), key
        # --- e2e counts business events only ------------------------------------------------------------
        e2e_reading = e2e.collect(time.time())
        assert sum(e2e_reading.values("watchtower_e2e_events_total").values()) == BUSINESS
        assert e2e_reading.values("watchtower_e2e_latency_seconds")

        # --- Spark progress: the collector reports what Spark reported ---------------------------------
        def settled():
            rd = progress.collect(time.time())
            st = progress.jobs.get("watchtower-spark")
            if st is None or st.latest_batch is None:
                return None
            reported = {p.batchId: p for p in job.query.recentProgress}
            p = reported.get(st.latest_batch.batch_id)
            return (rd, st, p) if p is not None else None

        rd, st, spark_progress = until(settled, "a batch progress in the stream")
        jl = (("engine", "spark"), ("job", "watchtower-spark"))
        d = spark_progress.durationMs
        assert rd.values("watchtower_checkpoint_duration_seconds") == {jl: d["triggerExecution"] / 1000}
        phases = {dict(k)["phase"]: v for k, v in rd.values("watchtower_spark_trigger_phase_seconds").items()}
        assert phases["walCommit"] == d["walCommit"] / 1000
        assert phases["commitOffsets"] == d["commitOffsets"] / 1000
        assert phases == {k: v / 1000 for k, v in d.items()}
        # the job's source ships chunks, so Spark's numInputRows counts chunks: the stream carries records
        records = job.writer.input_rows(spark_progress.batchId)
        assert records is not None and records >= spark_progress.numInputRows
        assert rd.values("watchtower_spark_batch_input_rows") == {jl: float(records)}
        assert rd.values("watchtower_spark_progress_age_seconds")[jl] >= 0
    finally:
        canary.close()
        e2e.close()
        progress.close()
