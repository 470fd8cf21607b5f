"""What happened to the pipeline's input: late events, duplicates and DLQ records (rate and share of input),
and the pipeline's watermark against the wall clock.

Read from the Spark job's progress stream (`pipeline.progress_stream`): for every batch it handled, the job
publishes the outcome counts of `pipelines.spark.processing.process` (`sink_rows`, `dlq_rows`, `late_rows`,
`duplicate_rows`, `control_rows`, see docs/pipeline.md) and its own watermark (`pipeline_watermark_ms`).

Why these signals: a late share that jumps means a producer or the watermark went wrong (one event
stamped a year ahead used to send every on-time event after it to `late`); a duplicate share that jumps
means redeliveries (a consumer crash between write and commit) or a producer retry storm; a watermark
ahead of now is poisoned, whatever the counts say. These are the pipeline's own counts: good enough to
alert on, never the proof of conservation (that is `watchtower.chaos.verdict`, read back from the sinks).

Shares and per-second rates are over the batches whose trigger started in the last `window` seconds; with
no input in the window they are 0. Totals count from the first read (which starts `window` seconds back).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import Field

from watchtower.collectors.base import BuildContext, CollectorKind, CollectorSection
from watchtower.collectors.redis_stream import LazyRedis, StreamCursor, redis_errors
from watchtower.core.types import Kind, MetricSpec, Reading, Sample, labels
from watchtower.core.units import Duration

ENGINE = "spark"
OUTCOMES = ("input", "sink", "dlq", "late", "duplicate", "control", "future")
SHARED = ("dlq", "late", "duplicate", "future")  # outcomes with a share and a rate
OPTIONAL = {"future": 0}  # published by newer jobs only; `future` is part of `dlq`

_JOB = ("engine", "job")
SPECS = (
    MetricSpec(
        "watchtower_pipeline_records_total",
        Kind.COUNTER,
        "Records the job handled since the daemon started (first read: the last `window`), by outcome "
        "(input, sink, dlq, late, duplicate, control; future: the dlq records stamped beyond the skew bound)",
        (*_JOB, "outcome"),
    ),
    MetricSpec(
        "watchtower_pipeline_outcome_share",
        Kind.GAUGE,
        "Share of the input (0..1) that was late, duplicate, dlq or future, over the batches of the last `window`",
        (*_JOB, "outcome"),
        unit="percentunit",
    ),
    MetricSpec(
        "watchtower_pipeline_outcome_per_second",
        Kind.GAUGE,
        "Late, duplicate, dlq or future records per second over the last `window`",
        (*_JOB, "outcome"),
    ),
    MetricSpec(
        "watchtower_watermark_ahead_seconds",
        Kind.GAUGE,
        "How far the job's event-time watermark is ahead of the wall clock (0 when behind): above 0 it is "
        "poisoned, every on-time event is late",
        _JOB,
    ),
)


class PipelineOutcomesConfig(CollectorSection):
    """Late / duplicate / DLQ rate and share of input and the watermark's skew, from the job's progress stream."""

    stream: str | None = Field(default=None, description="default: pipeline.progress_stream")
    read_count: int = Field(default=1000, ge=1, description="stream entries per XREAD")
    window: Duration = Field(
        default=60.0, gt=0, description="shares and rates over the batches of this window"
    )


# ---- pure --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    job: str
    run_id: str
    batch_id: int
    at: float  # epoch seconds of the trigger's start
    counts: dict[str, int] | None  # by OUTCOMES; None when the entry carries none (a replayed batch)
    watermark_ms: int | None


def _int(value: str | None) -> int | None:
    if value in (None, ""):
        return None
    try:
        f = float(value)
    except ValueError:
        return None
    return int(f) if math.isfinite(f) else None


def parse_outcome(fields: dict[str, str]) -> BatchOutcome | None:
    """One progress-stream entry -> BatchOutcome; None when it is not a progress entry."""
    try:
        at = datetime.fromisoformat(fields.get("timestamp", "")).timestamp()
    except ValueError:
        return None
    batch_id = _int(fields.get("batch_id"))
    if batch_id is None:
        return None
    raw = {o: _int(fields.get(f"{o}_rows")) for o in OUTCOMES}
    for o, default in OPTIONAL.items():
        if raw[o] is None and raw["input"] is not None:
            raw[o] = default
    counts = None if any(v is None for v in raw.values()) else {k: v for k, v in raw.items() if v is not None}
    return BatchOutcome(
        job=fields.get("name") or fields.get("query_id") or "unnamed",
        run_id=fields.get("run_id", ""),
        batch_id=batch_id,
        at=at,
        counts=counts,
        watermark_ms=_int(fields.get("pipeline_watermark_ms")),
    )


@dataclass
class JobOutcomes:
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    recent: deque[tuple[float, dict[str, int]]] = field(default_factory=deque)
    watermark_ms: int | None = None
    run_id: str = ""
    last_batch: int = -1

    def fold(self, o: BatchOutcome) -> None:
        """Fold one entry (in stream order); a batch reported twice within one run counts once."""
        if o.watermark_ms is not None:
            self.watermark_ms = o.watermark_ms
        if o.counts is None:
            return
        if o.run_id == self.run_id and o.batch_id <= self.last_batch:
            return
        self.run_id, self.last_batch = o.run_id, o.batch_id
        for k in OUTCOMES:
            self.totals[k] += o.counts[k]
        self.recent.append((o.at, o.counts))

    def samples(self, job: str, now: float, window: float) -> list[Sample]:
        while self.recent and self.recent[0][0] < now - window:
            self.recent.popleft()
        in_window = {k: sum(c[k] for _, c in self.recent) for k in OUTCOMES}
        out = [
            Sample(
                "watchtower_pipeline_records_total",
                labels(engine=ENGINE, job=job, outcome=k),
                float(self.totals[k]),
            )
            for k in OUTCOMES
        ]
        for k in SHARED:
            lb = labels(engine=ENGINE, job=job, outcome=k)
            share = in_window[k] / in_window["input"] if in_window["input"] else 0.0
            out.append(Sample("watchtower_pipeline_outcome_share", lb, share))
            out.append(Sample("watchtower_pipeline_outcome_per_second", lb, in_window[k] / window))
        if self.watermark_ms is not None:
            ahead = max(0.0, self.watermark_ms / 1000 - now)
            out.append(Sample("watchtower_watermark_ahead_seconds", labels(engine=ENGINE, job=job), ahead))
        return out


# ---- I/O ---------------------------------------------------------------------------------------------


class PipelineOutcomesCollector:
    """Collector `pipeline_outcomes`. Redis client made on first use; raises `RedisUnavailable` when Redis
    does not answer, and resumes from its last stream id when it does again."""

    specs = SPECS

    def __init__(
        self, config: PipelineOutcomesConfig, redis_url: str, stream: str, name: str = "pipeline_outcomes"
    ):
        self.name = name
        self.interval = config.interval
        self.config = config
        self.stream = stream
        self._redis = LazyRedis(redis_url, config.timeout)
        self._cursor: StreamCursor | None = None
        self.jobs: dict[str, JobOutcomes] = {}

    def collect(self, now: float) -> Reading:
        if self._cursor is None:
            self._cursor = StreamCursor(
                self.stream, self.config.read_count, start_ms=int((now - self.config.window) * 1000)
            )
        with redis_errors(f"reading stream {self.stream}"):
            entries = self._cursor.read(self._redis.get())
        for _, fields in entries:
            o = parse_outcome(fields)
            if o is not None:
                self.jobs.setdefault(o.job, JobOutcomes()).fold(o)
        samples: list[Sample] = []
        detail: dict[str, Any] = {"stream": self.stream, "read": len(entries), "jobs": {}}
        for job, st in sorted(self.jobs.items()):
            samples += st.samples(job, now, self.config.window)
            detail["jobs"][job] = {
                "totals": dict(st.totals),
                "watermark_ms": st.watermark_ms,
                "last_batch": st.last_batch,
            }
        return Reading(collector=self.name, at=now, samples=tuple(samples), detail=detail)

    def close(self) -> None:
        self._redis.close()


def build(config: PipelineOutcomesConfig, ctx: BuildContext) -> PipelineOutcomesCollector | None:
    """The daemon's factory: needs the pipeline's Redis; the stream defaults to the progress stream."""
    if not config.enabled or not ctx.redis_url:
        return None
    return PipelineOutcomesCollector(config, ctx.redis_url, config.stream or ctx.pipeline.progress_stream)


KIND = CollectorKind("pipeline_outcomes", PipelineOutcomesConfig, build, SPECS, demo={"interval": 2.0})
