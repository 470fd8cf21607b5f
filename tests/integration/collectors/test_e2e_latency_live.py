"""The e2e latency collector against entries the Spark job's own RedisSink writes to a real Redis."""

from __future__ import annotations

import pytest
import redis
from collector_helpers import raw_rows

from pipelines.events import encode, new_event
from pipelines.spark.processing import BatchContext, process
from pipelines.spark.redis_sink import RedisSink
from watchtower.collectors.e2e_latency import E2eLatencyCollector, E2eLatencyConfig
from watchtower.collectors.redis_stream import RedisUnavailable
from watchtower.core.types import labels

pytestmark = pytest.mark.integration

SPARK = labels(source="spark")


def write_batch(client: redis.Redis, batch_id: int, visible_ms: int, latencies_ms: list[int]) -> None:
    """One micro-batch through the real sink: events whose event_time is visible_ms - latency."""
    values = [encode(new_event(f"u{i}", 1.0, "paid", visible_ms - lat)) for i, lat in enumerate(latencies_ms)]
    result = process(raw_rows(values, first_offset=batch_id * 1000), BatchContext(batch_id, None))
    RedisSink(client, "e2e-test", 900, 60_000, clock=lambda: visible_ms / 1000).write(result)


def quantiles(reading) -> dict[str, float]:
    return {dict(k)["quantile"]: v for k, v in reading.values("watchtower_e2e_latency_seconds").items()}


def test_percentiles_and_slo_counters_follow_the_stream(redis_url: str, redis_client: redis.Redis) -> None:
    import time

    now_ms = int(time.time() * 1000)
    write_batch(redis_client, 0, now_ms - 2000, [1000] * 90 + [7000] * 10)
    write_batch(redis_client, 1, now_ms - 1000, [2000] * 50)
    c = E2eLatencyCollector(E2eLatencyConfig(window=300, slo_threshold=5), redis_url)
    try:
        r = c.collect(now_ms / 1000)
        assert r.values("watchtower_e2e_events_total") == {SPARK: 150.0}
        assert r.values("watchtower_e2e_events_slow_total") == {SPARK: pytest.approx(10.0)}
        assert quantiles(r) == {"0.5": 1.0, "0.95": 7.0, "0.99": 7.0}
        assert r.values("watchtower_e2e_latency_max_seconds") == {SPARK: 7.0}

        # Nothing new: counters stay, nothing is read twice.
        assert c.collect(now_ms / 1000 + 1).values("watchtower_e2e_events_total") == {SPARK: 150.0}

        write_batch(redis_client, 2, now_ms, [6000] * 20)
        r = c.collect(now_ms / 1000 + 2)
        assert r.values("watchtower_e2e_events_total") == {SPARK: 170.0}
        assert r.values("watchtower_e2e_events_slow_total") == {SPARK: pytest.approx(30.0)}

        # Past the window, percentiles go and counters stay.
        r = c.collect(now_ms / 1000 + 400)
        assert quantiles(r) == {} and r.values("watchtower_e2e_window_events") == {SPARK: 0.0}
        assert r.values("watchtower_e2e_events_total") == {SPARK: 170.0}
    finally:
        c.close()


def test_first_cycle_reads_only_the_window(redis_url: str, redis_client: redis.Redis) -> None:
    import time

    now_ms = int(time.time() * 1000)
    write_batch(redis_client, 0, now_ms - 600_000, [100] * 5)  # ten minutes ago
    write_batch(redis_client, 1, now_ms, [100] * 3)
    c = E2eLatencyCollector(E2eLatencyConfig(window=300), redis_url)
    try:
        # Stream ids are Redis' own clock (now), so both entries are new; the window still drops the old one.
        r = c.collect(now_ms / 1000)
        assert r.values("watchtower_e2e_window_events") == {SPARK: 3.0}
    finally:
        c.close()


def test_redis_going_away_marks_the_cycle_failed_and_the_collector_recovers(own_redis) -> None:
    import time

    client = redis.Redis.from_url(own_redis.url)
    now_ms = int(time.time() * 1000)
    write_batch(client, 0, now_ms, [1000] * 10)
    c = E2eLatencyCollector(E2eLatencyConfig(timeout=1), own_redis.url)
    try:
        assert c.collect(now_ms / 1000).values("watchtower_e2e_events_total") == {SPARK: 10.0}
        own_redis.stop()
        with pytest.raises(RedisUnavailable) as err:
            c.collect(now_ms / 1000 + 1)
        assert "watchtower:e2e" in str(err.value)
        own_redis.start()  # same port, empty
        client = redis.Redis.from_url(own_redis.url)
        write_batch(client, 1, now_ms + 2000, [1000] * 4)
        r = c.collect(now_ms / 1000 + 3)
        assert r.values("watchtower_e2e_events_total") == {SPARK: 14.0}
    finally:
        c.close()
