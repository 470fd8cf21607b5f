"""Spark Structured Streaming query progress, read from the Redis stream the job's listener writes.

`pipelines/spark/progress.py` flattens every StreamingQueryProgress into one stream entry (see its
`progress_fields`); this collector XREADs the entries added since its last cycle and keeps, per query
name, the newest progress and the newest progress *that ran a batch* (its `durationMs` holds
`walCommit`). Trigger durations come from the latter, so a query with nothing to do keeps reporting the
cost of its last real batch instead of the few milliseconds of an empty trigger.

Spark reports progress only when it runs a batch (an idle query goes to the listener's `onQueryIdle`,
which publishes nothing), so a quiet stream is not a dead job: `watchtower_spark_progress_age_seconds`
grows and rules decide, together with the consumer lag of the job's group, whether that is idle or stuck.
No `watchtower_job_up` is derived from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import Field

from watchtower.collectors.base import BuildContext, CollectorKind, CollectorSection
from watchtower.collectors.redis_stream import LazyRedis, StreamCursor, redis_errors
from watchtower.core.types import Kind, MetricSpec, Reading, Sample, labels


class SparkProgressConfig(CollectorSection):
    """Spark query progress from the job's Redis stream: trigger phases, throughput, watermark, state."""

    stream: str | None = Field(default=None, description="default: pipeline.progress_stream")
    read_count: int = Field(default=1000, ge=1, description="stream entries per XREAD")


ENGINE = "spark"
SOURCE_VERTEX = "source"

_JOB = ("engine", "job")
SPECS = (
    MetricSpec(
        "watchtower_checkpoint_duration_seconds",
        Kind.GAUGE,
        "Spark: triggerExecution of the latest trigger that ran a batch (offsets WAL to commit log)",
        _JOB,
    ),
    MetricSpec(
        "watchtower_spark_trigger_phase_seconds",
        Kind.GAUGE,
        "Spark: one durationMs part (walCommit, addBatch, commitOffsets, ...) of the latest trigger that ran a batch",
        (*_JOB, "phase"),
    ),
    MetricSpec(
        "watchtower_records_in_per_second",
        Kind.GAUGE,
        "Spark: inputRowsPerSecond of the latest progress (rows read per second since the previous trigger)",
        (*_JOB, "vertex"),
    ),
    MetricSpec(
        "watchtower_spark_processed_rows_per_second",
        Kind.GAUGE,
        "Spark: processedRowsPerSecond of the latest progress (rows per second of trigger execution)",
        _JOB,
    ),
    MetricSpec(
        "watchtower_spark_batch_input_rows", Kind.GAUGE, "Spark: input rows of the latest batch", _JOB
    ),
    MetricSpec(
        "watchtower_spark_input_rows_total",
        Kind.COUNTER,
        "Spark: input rows of the progress entries read since the daemon started",
        _JOB,
    ),
    MetricSpec("watchtower_spark_batch_id", Kind.GAUGE, "Spark: id of the latest batch", _JOB),
    MetricSpec(
        "watchtower_watermark_lag_seconds",
        Kind.GAUGE,
        "Now minus the job's event-time watermark (the pipeline's own, else Spark's eventTime.watermark)",
        _JOB,
    ),
    MetricSpec(
        "watchtower_spark_state_rows", Kind.GAUGE, "Spark: rows held by the query's state operators", _JOB
    ),
    MetricSpec(
        "watchtower_spark_progress_age_seconds",
        Kind.GAUGE,
        "Seconds since the trigger of the latest progress started (grows while idle or stuck)",
        _JOB,
    ),
)


# ---- parsing: pure ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Progress:
    job: str
    run_id: str
    batch_id: int
    timestamp: float  # epoch seconds of the trigger's start
    input_rows: int
    input_rows_per_second: float
    processed_rows_per_second: float
    durations_ms: dict[str, float] = field(default_factory=dict)
    watermark_ms: int | None = None
    state_rows: int = 0

    @property
    def ran_batch(self) -> bool:
        return "walCommit" in self.durations_ms or "addBatch" in self.durations_ms


def _iso_seconds(value: str) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _float(value: str | None, default: float = 0.0) -> float:
    try:
        f = float(value) if value not in (None, "") else default
    except ValueError:
        return default
    return f if math.isfinite(f) else default


def parse_progress(fields: dict[str, str]) -> Progress | None:
    """One stream entry -> Progress; None when it is not a progress entry."""
    ts = _iso_seconds(fields.get("timestamp", ""))
    if ts is None or "batch_id" not in fields:
        return None
    try:
        durations = {
            str(k): float(v) for k, v in (orjson.loads(fields.get("duration_ms") or "{}") or {}).items()
        }
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError):
        durations = {}
    wm: int | None = None
    if fields.get("pipeline_watermark_ms"):
        wm = int(_float(fields["pipeline_watermark_ms"]))
    else:
        spark_wm = _iso_seconds(fields.get("watermark", ""))
        if spark_wm is not None and spark_wm > 0:  # Spark reports 1970-01-01 before any watermark
            wm = int(spark_wm * 1000)
    return Progress(
        job=fields.get("name") or fields.get("query_id") or "unnamed",
        run_id=fields.get("run_id", ""),
        batch_id=int(_float(fields.get("batch_id"), -1)),
        timestamp=ts,
        input_rows=int(_float(fields.get("input_rows"))),
        input_rows_per_second=_float(fields.get("input_rows_per_second")),
        processed_rows_per_second=_float(fields.get("processed_rows_per_second")),
        durations_ms=durations,
        watermark_ms=wm,
        state_rows=int(_float(fields.get("state_rows"))),
    )


@dataclass
class JobState:
    latest: Progress
    latest_batch: Progress | None = None
    input_rows_total: float = 0.0


def fold(states: dict[str, JobState], progress: Progress) -> None:
    """Fold one progress (in stream order) into the per-job state."""
    st = states.get(progress.job)
    if st is None:
        st = states[progress.job] = JobState(progress)
    st.latest = progress
    if progress.ran_batch:
        st.latest_batch = progress
    st.input_rows_total += progress.input_rows


def job_samples(st: JobState, now: float) -> list[Sample]:
    p = st.latest
    jl = labels(engine=ENGINE, job=p.job)
    out = [
        Sample(
            "watchtower_records_in_per_second",
            labels(engine=ENGINE, job=p.job, vertex=SOURCE_VERTEX),
            p.input_rows_per_second,
        ),
        Sample("watchtower_spark_processed_rows_per_second", jl, p.processed_rows_per_second),
        Sample("watchtower_spark_input_rows_total", jl, st.input_rows_total),
        Sample("watchtower_spark_batch_id", jl, float(p.batch_id)),
        Sample("watchtower_spark_state_rows", jl, float(p.state_rows)),
        Sample("watchtower_spark_progress_age_seconds", jl, max(0.0, now - p.timestamp)),
    ]
    if p.watermark_ms is not None:
        out.append(Sample("watchtower_watermark_lag_seconds", jl, now - p.watermark_ms / 1000))
    b = st.latest_batch
    if b is not None:
        out.append(Sample("watchtower_spark_batch_input_rows", jl, float(b.input_rows)))
        if "triggerExecution" in b.durations_ms:
            out.append(
                Sample(
                    "watchtower_checkpoint_duration_seconds", jl, b.durations_ms["triggerExecution"] / 1000
                )
            )
        for phase, ms in sorted(b.durations_ms.items()):
            out.append(
                Sample(
                    "watchtower_spark_trigger_phase_seconds",
                    labels(engine=ENGINE, job=b.job, phase=phase),
                    ms / 1000,
                )
            )
    return out


# ---- I/O ---------------------------------------------------------------------------------------------


class SparkProgressCollector:
    """Collector `spark_progress`. Redis client made on first use; raises `RedisUnavailable` when Redis
    does not answer, and resumes from its last stream id when it does again."""

    specs = SPECS

    def __init__(
        self, config: SparkProgressConfig, redis_url: str, stream: str, name: str = "spark_progress"
    ):
        self.name = name
        self.interval = config.interval
        self.config = config
        self.stream = stream
        self._redis = LazyRedis(redis_url, config.timeout)
        # The first read takes only the newest entry: the current state, without replaying the backlog.
        self._cursor = StreamCursor(stream, config.read_count, start_ms=None)
        self.jobs: dict[str, JobState] = {}
        self.skipped = 0

    def collect(self, now: float) -> Reading:
        with redis_errors(f"reading stream {self.stream}"):
            entries = self._cursor.read(self._redis.get())
        for _, fields in entries:
            p = parse_progress(fields)
            if p is None:
                self.skipped += 1
                continue
            fold(self.jobs, p)
        samples: list[Sample] = []
        detail: dict[str, Any] = {
            "stream": self.stream,
            "read": len(entries),
            "skipped": self.skipped,
            "jobs": {},
        }
        for name, st in sorted(self.jobs.items()):
            samples += job_samples(st, now)
            detail["jobs"][name] = {
                "run_id": st.latest.run_id,
                "batch_id": st.latest.batch_id,
                "timestamp": st.latest.timestamp,
                "last_batch_id": st.latest_batch.batch_id if st.latest_batch else None,
                "last_batch_durations_ms": dict(st.latest_batch.durations_ms) if st.latest_batch else None,
            }
        return Reading(collector=self.name, at=now, samples=tuple(samples), detail=detail)

    def close(self) -> None:
        self._redis.close()


def build(config: SparkProgressConfig, ctx: BuildContext) -> SparkProgressCollector | None:
    if not config.enabled or not ctx.redis_url:
        return None
    return SparkProgressCollector(config, ctx.redis_url, config.stream or ctx.pipeline.progress_stream)


KIND = CollectorKind("spark_progress", SparkProgressConfig, build, SPECS, demo={"interval": 2.0})
