"""Spark progress entries -> samples: parsing, folding per job, idle triggers, watermark lag."""

from __future__ import annotations

import orjson
import pytest

from watchtower.collectors.spark_progress import JobState, fold, job_samples, parse_progress
from watchtower.core.types import labels

T0 = 1795448640.0


def entry(batch_id: int, ts: str, rows: int, durations: dict, **extra) -> dict[str, str]:
    fields = {
        "source": "spark",
        "query_id": "q",
        "run_id": "r1",
        "name": "watchtower-spark",
        "timestamp": ts,
        "batch_id": str(batch_id),
        "input_rows": str(rows),
        "input_rows_per_second": "100.5",
        "processed_rows_per_second": "2000.0",
        "duration_ms": orjson.dumps(durations).decode(),
        "watermark": "",
        "pipeline_watermark_ms": "",
        "state_rows": "0",
        "end_offset": "[]",
    }
    fields.update(extra)
    return fields


BATCH = {
    "addBatch": 300,
    "commitOffsets": 20,
    "getBatch": 1,
    "latestOffset": 5,
    "queryPlanning": 10,
    "triggerExecution": 350,
    "walCommit": 12,
}


def values(samples, metric):
    return {s.labels: s.value for s in samples if s.metric == metric}


def test_a_batch_progress_becomes_checkpoint_and_phase_samples() -> None:
    p = parse_progress(entry(7, "2026-11-23T15:44:00.000Z", 50, BATCH, pipeline_watermark_ms="1795448040000"))
    assert p is not None and p.ran_batch and p.batch_id == 7
    states: dict[str, JobState] = {}
    fold(states, p)
    s = job_samples(states["watchtower-spark"], now=p.timestamp + 2)
    jl = labels(engine="spark", job="watchtower-spark")
    assert values(s, "watchtower_checkpoint_duration_seconds") == {jl: 0.35}
    phases = values(s, "watchtower_spark_trigger_phase_seconds")
    assert phases[labels(engine="spark", job="watchtower-spark", phase="walCommit")] == 0.012
    assert phases[labels(engine="spark", job="watchtower-spark", phase="commitOffsets")] == 0.02
    assert values(s, "watchtower_records_in_per_second") == {
        labels(engine="spark", job="watchtower-spark", vertex="source"): 100.5
    }
    assert values(s, "watchtower_spark_batch_input_rows") == {jl: 50}
    assert values(s, "watchtower_spark_progress_age_seconds") == {jl: 2.0}
    assert values(s, "watchtower_watermark_lag_seconds")[jl] == pytest.approx(p.timestamp + 2 - 1795448040.0)


def test_an_idle_trigger_keeps_the_last_batchs_durations_but_updates_rates() -> None:
    states: dict[str, JobState] = {}
    fold(states, parse_progress(entry(7, "2026-11-23T15:44:00.000Z", 50, BATCH)))
    idle = entry(
        7,
        "2026-11-23T15:44:10.000Z",
        0,
        {"latestOffset": 2, "triggerExecution": 3},
        input_rows_per_second="0.0",
        processed_rows_per_second="0.0",
    )
    fold(states, parse_progress(idle))
    s = job_samples(states["watchtower-spark"], now=T0)
    jl = labels(engine="spark", job="watchtower-spark")
    assert values(s, "watchtower_checkpoint_duration_seconds") == {jl: 0.35}
    assert (
        values(s, "watchtower_records_in_per_second")[
            labels(engine="spark", job="watchtower-spark", vertex="source")
        ]
        == 0.0
    )
    assert values(s, "watchtower_spark_input_rows_total") == {jl: 50}


def test_spark_watermark_is_used_when_the_pipeline_has_none() -> None:
    p = parse_progress(entry(1, "2026-11-23T15:44:00.000Z", 1, BATCH, watermark="2026-11-23T15:40:00.000Z"))
    assert p.watermark_ms == int(parse_progress(entry(0, "2026-11-23T15:40:00.000Z", 0, {})).timestamp * 1000)
    epoch = parse_progress(
        entry(1, "2026-11-23T15:44:00.000Z", 1, BATCH, watermark="1970-01-01T00:00:00.000Z")
    )
    assert epoch.watermark_ms is None


@pytest.mark.parametrize(
    "bad", [{}, {"timestamp": "nope", "batch_id": "1"}, {"timestamp": "2026-11-23T15:44:00Z"}]
)
def test_entries_that_are_not_progress_are_skipped(bad) -> None:
    assert parse_progress(bad) is None
