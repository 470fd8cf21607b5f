"""The Spark progress collector on entries flattened by the job's own `progress_fields`, in a real Redis."""

from __future__ import annotations

import pytest
import redis

from pipelines.spark.progress import progress_fields
from watchtower.collectors.redis_stream import RedisUnavailable
from watchtower.collectors.spark_progress import SparkProgressCollector, SparkProgressConfig
from watchtower.core.types import labels

pytestmark = pytest.mark.integration

JL = labels(engine="spark", job="watchtower-spark")
STREAM = "watchtower:spark:progress"


def progress(batch_id: int, rows: int, trigger_ms: int) -> dict:
    return {
        "id": "q1",
        "runId": "r1",
        "name": "watchtower-spark",
        "timestamp": "2026-11-23T15:44:00.000Z",
        "batchId": batch_id,
        "numInputRows": rows,
        "inputRowsPerSecond": 10.0,
        "processedRowsPerSecond": 50.0,
        "durationMs": {
            "triggerExecution": trigger_ms,
            "walCommit": 4,
            "addBatch": trigger_ms - 10,
            "commitOffsets": 3,
        },
        "stateOperators": [],
        "sources": [],
    }


def test_reads_new_entries_only_and_survives_redis_going_away(own_redis) -> None:
    client = redis.Redis.from_url(own_redis.url)
    client.xadd(STREAM, progress_fields(progress(0, 5, 100)))
    client.xadd(STREAM, progress_fields(progress(1, 7, 200)))
    c = SparkProgressCollector(SparkProgressConfig(timeout=1), own_redis.url, STREAM)
    try:
        r = c.collect(1795448650.0)  # first cycle: the newest entry only
        assert r.values("watchtower_checkpoint_duration_seconds") == {JL: 0.2}
        assert r.values("watchtower_spark_input_rows_total") == {JL: 7.0}
        client.xadd(STREAM, progress_fields(progress(2, 3, 300)))
        r = c.collect(1795448651.0)
        assert r.values("watchtower_checkpoint_duration_seconds") == {JL: 0.3}
        assert r.values("watchtower_spark_input_rows_total") == {JL: 10.0}
        assert r.values("watchtower_spark_progress_age_seconds") == {JL: 11.0}

        own_redis.stop()
        with pytest.raises(RedisUnavailable):
            c.collect(1795448652.0)
        own_redis.start()
        redis.Redis.from_url(own_redis.url).xadd(STREAM, progress_fields(progress(3, 1, 400)))
        r = c.collect(1795448653.0)
        assert r.values("watchtower_checkpoint_duration_seconds") == {JL: 0.4}
        assert r.values("watchtower_spark_batch_id") == {JL: 3.0}
    finally:
        c.close()
