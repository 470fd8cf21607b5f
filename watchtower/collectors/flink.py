"""Flink jobs through the JobManager REST API: state, restarts, checkpoints, backpressure, throughput.

Endpoints read per cycle (GET, JSON):
  /jobs/overview                                   jobs with jid, name, state, start-time
  /jobs/:jid                                        vertices (id, name) of a job
  /jobs/:jid/metrics?get=numRestarts                restarts of the job since it was submitted
  /jobs/:jid/checkpoints                            counts and the latest completed checkpoint
  /jobs/:jid/vertices/:vid/backpressure             per-subtask backpressure ratio and busy ratio
  /jobs/:jid/vertices/:vid/subtasks/metrics?get=... numRecordsIn/OutPerSecond and the job's own counters
                                                   (`USER_METRICS`), summed over subtasks; the highest
                                                   currentInputWatermark over subtasks (watermark vs clock)
  /jobs/:jid/vertices/:vid/subtasks/metrics         the metric ids, per vertex every 30 s: a user metric's
                                                   id carries its operator's name (`<operator>.futureEvents`)

The parsing is pure (functions of the JSON bodies and `now`, tested against captured answers); the HTTP
lives in `FlinkCollector`. Jobs are labelled by name, not jid, so a resubmitted job keeps its series.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from watchtower.collectors.base import BuildContext, CollectorKind
from watchtower.config.flink import FlinkConfig
from watchtower.core.types import Kind, MetricSpec, Reading, Sample, labels

ENGINE = "flink"
JOB_METRICS = ("numRestarts",)
VERTEX_METRICS = ("numRecordsInPerSecond", "numRecordsOutPerSecond")
# Event time a vertex's input has reached. Flink reports Long.MIN_VALUE before the first watermark.
WATERMARK_METRIC = "currentInputWatermark"
# The reference job's user metrics (pipelines/flink/job.py) -> (outcome label, family): counters of records
# late for their window, stamped beyond the skew bound, or skipped (malformed, control, future), and the
# rate Flink's meter keeps of the future ones. The same families and outcomes as the Spark job's.
USER_METRICS = {
    "lateEvents": ("late", "watchtower_pipeline_records_total"),
    "futureEvents": ("future", "watchtower_pipeline_records_total"),
    "skippedEvents": ("skipped", "watchtower_pipeline_records_total"),
    "futureEventsPerSecond": ("future", "watchtower_pipeline_outcome_per_second"),
}
# Flink's JobStatus values; every one is emitted (0 or 1) so a rule can match on a state that is not current.
JOB_STATES = (
    "initializing",
    "created",
    "running",
    "failing",
    "failed",
    "cancelling",
    "canceled",
    "finished",
    "restarting",
    "suspended",
    "reconciling",
)
USER_IDS_RELIST = 30.0  # seconds between two listings of a vertex's metric ids
_TERMINAL = frozenset({"failed", "canceled", "finished"})

_JOB = ("engine", "job")
_VERTEX = ("engine", "job", "vertex")
SPECS = (
    MetricSpec(
        "watchtower_job_up",
        Kind.GAUGE,
        "1 while the job is RUNNING, else 0 (also 0 for a watched job that is absent)",
        _JOB,
    ),
    MetricSpec(
        "watchtower_job_status",
        Kind.GAUGE,
        "1 for the job's current status, 0 for the others",
        (*_JOB, "status"),
    ),
    MetricSpec(
        "watchtower_job_restarts_total", Kind.COUNTER, "Restarts of the job since it was submitted", _JOB
    ),
    MetricSpec(
        "watchtower_checkpoint_duration_seconds",
        Kind.GAUGE,
        "End-to-end duration of the latest completed checkpoint",
        _JOB,
    ),
    MetricSpec(
        "watchtower_checkpoint_size_bytes",
        Kind.GAUGE,
        "Full state size of the latest completed checkpoint",
        _JOB,
    ),
    MetricSpec(
        "watchtower_checkpoint_age_seconds",
        Kind.GAUGE,
        "Seconds since the latest completed checkpoint was acknowledged",
        _JOB,
    ),
    MetricSpec(
        "watchtower_checkpoints_completed_total", Kind.COUNTER, "Completed checkpoints of the job", _JOB
    ),
    MetricSpec("watchtower_checkpoints_failed_total", Kind.COUNTER, "Failed checkpoints of the job", _JOB),
    MetricSpec("watchtower_checkpoints_in_progress", Kind.GAUGE, "Checkpoints currently in progress", _JOB),
    MetricSpec(
        "watchtower_backpressure_ratio",
        Kind.GAUGE,
        "Highest backpressured-time ratio over the vertex's subtasks (0..1)",
        _VERTEX,
    ),
    MetricSpec(
        "watchtower_busy_ratio",
        Kind.GAUGE,
        "Highest busy-time ratio over the vertex's subtasks (0..1)",
        _VERTEX,
    ),
    MetricSpec(
        "watchtower_records_in_per_second",
        Kind.GAUGE,
        "Records received per second, summed over the vertex's subtasks",
        _VERTEX,
    ),
    MetricSpec(
        "watchtower_records_out_per_second",
        Kind.GAUGE,
        "Records emitted per second, summed over the vertex's subtasks",
        _VERTEX,
    ),
    MetricSpec(
        "watchtower_pipeline_records_total",
        Kind.COUNTER,
        "Flink: records the job's tasks counted since they started, by outcome (late: lateEvents, future: "
        "futureEvents, skipped: skippedEvents), summed over operators and subtasks",
        (*_JOB, "outcome"),
    ),
    MetricSpec(
        "watchtower_pipeline_outcome_per_second",
        Kind.GAUGE,
        "Flink: future records per second (the job's futureEventsPerSecond meter, over its last minute)",
        (*_JOB, "outcome"),
    ),
    MetricSpec(
        "watchtower_watermark_ahead_seconds",
        Kind.GAUGE,
        "Flink: how far the highest input watermark of any vertex is ahead of the wall clock (0 when "
        "behind): above 0 it is poisoned, every on-time event is late",
        _JOB,
    ),
)


class FlinkUnavailable(RuntimeError):
    """The JobManager REST API did not answer (down, wrong URL, or timed out)."""


# ---- parsing: pure functions of the REST bodies ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobRef:
    jid: str
    name: str
    state: str  # lower case
    start_time: int  # epoch ms


def jobs_to_report(overview: Mapping[str, Any], watched: Sequence[str] = ()) -> list[JobRef]:
    """The newest job of each name in `/jobs/overview`, leaving out finished, failed and cancelled jobs
    unless their name is watched (an old cancelled run should not page anybody)."""
    newest: dict[str, JobRef] = {}
    for j in overview.get("jobs", []):
        ref = JobRef(str(j["jid"]), str(j["name"]), str(j["state"]).lower(), int(j.get("start-time", 0)))
        if ref.name not in newest or ref.start_time > newest[ref.name].start_time:
            newest[ref.name] = ref
    return [r for r in newest.values() if r.state not in _TERMINAL or r.name in watched]


def parse_job_metrics(body: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """`/jobs/:jid/metrics?get=a,b` -> {a: value}; Flink sends values as strings."""
    return {m["id"]: _number(m["value"]) for m in body if "value" in m}


@dataclass(frozen=True, slots=True)
class Checkpoints:
    completed: int
    failed: int
    in_progress: int
    latest_id: int | None = None
    latest_duration_ms: int | None = None
    latest_state_size: int | None = None
    latest_checkpointed_size: int | None = None
    latest_ack_ms: int | None = None
    latest_failure: str | None = None  # failure_message of the latest failed checkpoint


def parse_checkpoints(body: Mapping[str, Any]) -> Checkpoints:
    """`/jobs/:jid/checkpoints`: the counts, `latest.completed` (null before the first one) and the
    failure message of `latest.failed`."""
    counts = body.get("counts") or {}
    latest = (body.get("latest") or {}).get("completed")
    failed = (body.get("latest") or {}).get("failed") or {}
    base = Checkpoints(
        int(counts.get("completed", 0)),
        int(counts.get("failed", 0)),
        int(counts.get("in_progress", 0)),
        latest_failure=failed.get("failure_message"),
    )
    if not latest:
        return base
    return dataclasses.replace(
        base,
        latest_id=int(latest["id"]),
        latest_duration_ms=int(latest["end_to_end_duration"]),
        latest_state_size=int(latest["state_size"]),
        latest_checkpointed_size=int(latest.get("checkpointed_size", latest["state_size"])),
        latest_ack_ms=int(latest["latest_ack_timestamp"]),
    )


def parse_vertices(job: Mapping[str, Any]) -> list[tuple[str, str]]:
    """`/jobs/:jid` -> [(vertex id, vertex name)]."""
    return [(str(v["id"]), str(v["name"])) for v in job.get("vertices", [])]


@dataclass(frozen=True, slots=True)
class Backpressure:
    level: str  # ok | low | high
    ratio: float  # highest over subtasks
    busy_ratio: float | None  # highest over subtasks; None when no subtask reports one


def parse_backpressure(body: Mapping[str, Any]) -> Backpressure:
    """`/jobs/:jid/vertices/:vid/backpressure`. Subtasks report `ratio`, `idleRatio` and `busyRatio`
    (busyRatio is the string "NaN" for a source that has not measured it yet)."""
    subtasks = body.get("subtasks") or []
    ratios = [r for s in subtasks if (r := _number(s.get("ratio"))) is not None and not math.isnan(r)]
    busy = [b for s in subtasks if (b := _number(s.get("busyRatio"))) is not None and not math.isnan(b)]
    level = str(body.get("backpressureLevel") or body.get("backpressure-level") or "ok").lower()
    return Backpressure(level, max(ratios, default=0.0), max(busy) if busy else None)


def parse_subtask_metrics(body: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """`/jobs/:jid/vertices/:vid/subtasks/metrics?get=...` -> {metric: sum over subtasks} (the watermark,
    which does not add up, is left out: see `parse_watermark`)."""
    return {m["id"]: float(m["sum"]) for m in body if "sum" in m and m["id"] != WATERMARK_METRIC}


def parse_watermark(body: Sequence[Mapping[str, Any]]) -> float | None:
    """The highest `currentInputWatermark` over the vertex's subtasks (epoch ms), or None before the first
    watermark (Flink reports Long.MIN_VALUE) and for a vertex without input (a source)."""
    for m in body:
        if m.get("id") == WATERMARK_METRIC and "max" in m:
            value = float(m["max"])
            return value if value > 0 else None
    return None


def user_metric_ids(body: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The ids of `USER_METRICS` among a vertex's metric ids (`<operator>.<name>`, any operator)."""
    return tuple(sorted(m["id"] for m in body if str(m.get("id", "")).rsplit(".", 1)[-1] in USER_METRICS))


def listed_ids(body: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """What to ask a vertex for besides `VERTEX_METRICS`: its user metrics, and the task's input watermark
    where it has one. Only listed ids: one unknown id makes Flink answer the whole `?get=` with `[]` (a
    source vertex has no task-level `currentInputWatermark`)."""
    has_watermark = any(m.get("id") == WATERMARK_METRIC for m in body)
    return (*user_metric_ids(body), *((WATERMARK_METRIC,) if has_watermark else ()))


def user_samples(job: str, vertices: Iterable[VertexStats]) -> list[Sample]:
    """The job's user metrics summed over vertices, operators and subtasks, one sample per family and
    outcome; absent when no vertex reports the metric (a job without them is not a job with 0)."""
    totals: dict[tuple[str, str], float] = {}
    for v in vertices:
        for metric_id, value in v.rates.items():
            spec = USER_METRICS.get(metric_id.rsplit(".", 1)[-1])
            if spec is not None and metric_id not in VERTEX_METRICS and math.isfinite(value):
                outcome, family = spec
                totals[(family, outcome)] = totals.get((family, outcome), 0.0) + value
    return [
        Sample(family, labels(engine=ENGINE, job=job, outcome=outcome), value)
        for (family, outcome), value in sorted(totals.items())
    ]


@dataclass(frozen=True, slots=True)
class VertexStats:
    id: str
    name: str
    backpressure: Backpressure | None = None
    rates: Mapping[str, float] = field(default_factory=dict)
    watermark_ms: float | None = None


def job_samples(
    job: JobRef,
    restarts: float | None,
    checkpoints: Checkpoints | None,
    vertices: Iterable[VertexStats],
    now: float,
) -> list[Sample]:
    """The samples of one job; parts Flink did not answer are left out, not zeroed."""
    jl = labels(engine=ENGINE, job=job.name)
    out = [Sample("watchtower_job_up", jl, 1.0 if job.state == "running" else 0.0)]
    states = JOB_STATES if job.state in JOB_STATES else (*JOB_STATES, job.state)
    out += [
        Sample("watchtower_job_status", labels(engine=ENGINE, job=job.name, status=s), float(s == job.state))
        for s in states
    ]
    if restarts is not None:
        out.append(Sample("watchtower_job_restarts_total", jl, restarts))
    if checkpoints is not None:
        out += [
            Sample("watchtower_checkpoints_completed_total", jl, float(checkpoints.completed)),
            Sample("watchtower_checkpoints_failed_total", jl, float(checkpoints.failed)),
            Sample("watchtower_checkpoints_in_progress", jl, float(checkpoints.in_progress)),
        ]
        if checkpoints.latest_id is not None:
            out += [
                Sample("watchtower_checkpoint_duration_seconds", jl, checkpoints.latest_duration_ms / 1000),
                Sample("watchtower_checkpoint_size_bytes", jl, float(checkpoints.latest_state_size)),
                Sample(
                    "watchtower_checkpoint_age_seconds", jl, max(0.0, now - checkpoints.latest_ack_ms / 1000)
                ),
            ]
    vertices = list(vertices)
    for v in vertices:
        vl = labels(engine=ENGINE, job=job.name, vertex=v.name)
        if v.backpressure is not None:
            out.append(Sample("watchtower_backpressure_ratio", vl, v.backpressure.ratio))
            if v.backpressure.busy_ratio is not None:
                out.append(Sample("watchtower_busy_ratio", vl, v.backpressure.busy_ratio))
        if "numRecordsInPerSecond" in v.rates:
            out.append(Sample("watchtower_records_in_per_second", vl, v.rates["numRecordsInPerSecond"]))
        if "numRecordsOutPerSecond" in v.rates:
            out.append(Sample("watchtower_records_out_per_second", vl, v.rates["numRecordsOutPerSecond"]))
    marks = [v.watermark_ms for v in vertices if v.watermark_ms is not None]
    if marks:
        out.append(Sample("watchtower_watermark_ahead_seconds", jl, max(0.0, max(marks) / 1000 - now)))
    return out + user_samples(job.name, vertices)


def absent_job_samples(name: str) -> list[Sample]:
    """A watched job that the cluster does not list: down, with no status."""
    return [Sample("watchtower_job_up", labels(engine=ENGINE, job=name), 0.0)]


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)  # Flink sends "NaN" and numeric strings as well as numbers
    except (TypeError, ValueError):
        return None


# ---- I/O ---------------------------------------------------------------------------------------------


class FlinkCollector:
    """Reads every job on one Flink cluster. No network in `__init__`; the HTTP client is made on first use.

    `collect` raises `FlinkUnavailable` when the JobManager does not answer `/jobs/overview`. A job that
    vanishes between two requests of one cycle (404) is reported from what was read, never raised.
    """

    specs = SPECS

    def __init__(
        self, config: FlinkConfig, name: str = "flink", transport: httpx.BaseTransport | None = None
    ):
        self.name = name
        self.interval = config.collect_interval
        self._config = config
        self._transport = transport
        self._client: httpx.Client | None = None
        # (jid, vertex id) -> (user metric ids, when listed)
        self._user_ids: dict[tuple[str, str], tuple[tuple[str, ...], float]] = {}

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                base_url=self._config.rest_url,
                timeout=httpx.Timeout(self._config.request_timeout),
                transport=self._transport,
            )
        return self._client

    def _get(self, path: str) -> Any:
        """The JSON body at `path`; None for a 404 (the job or vertex is gone)."""
        try:
            resp = self._http().get(path)
        except httpx.HTTPError as exc:
            raise FlinkUnavailable(
                f"Flink REST API at {self._config.rest_url} did not answer {path}: {exc!r}"
            ) from exc
        if resp.status_code == 404:
            return None
        if resp.status_code >= 400:
            raise FlinkUnavailable(
                f"Flink REST API at {self._config.rest_url} answered {resp.status_code} to {path}: {resp.text[:200]}"
            )
        return resp.json()

    def collect(self, now: float) -> Reading:
        watched = self._config.watched()
        overview = self._get("/jobs/overview")
        if overview is None:
            raise FlinkUnavailable(
                f"{self._config.rest_url}/jobs/overview is 404: is rest_url a Flink JobManager?"
            )
        samples: list[Sample] = []
        detail: dict[str, Any] = {"rest_url": self._config.rest_url, "jobs": {}}
        jobs = jobs_to_report(overview, watched)
        for job in jobs:
            job_samples_, job_detail = self._read_job(job, now)
            samples += job_samples_
            detail["jobs"][job.name] = job_detail
        for name in watched:
            if name not in {j.name for j in jobs}:
                samples += absent_job_samples(name)
                detail["jobs"][name] = {"state": "absent"}
        return Reading(collector=self.name, at=now, samples=tuple(samples), detail=detail)

    def _read_job(self, job: JobRef, now: float) -> tuple[list[Sample], dict[str, Any]]:
        base = f"/jobs/{job.jid}"
        metrics = self._get(f"{base}/metrics?get={','.join(JOB_METRICS)}")
        restarts = parse_job_metrics(metrics).get("numRestarts") if metrics is not None else None
        cp_body = self._get(f"{base}/checkpoints")
        checkpoints = parse_checkpoints(cp_body) if cp_body is not None else None
        vertices: list[VertexStats] = []
        if job.state == "running":  # vertex metrics of a job that is not running are absent or stale
            job_body = self._get(base)
            for vid, vname in parse_vertices(job_body or {}):
                bp = self._get(f"{base}/vertices/{vid}/backpressure")
                wanted = (*VERTEX_METRICS, *self._user_metric_ids(job.jid, vid, now))
                rates = self._get(f"{base}/vertices/{vid}/subtasks/metrics?get={','.join(wanted)}")
                vertices.append(
                    VertexStats(
                        vid,
                        vname,
                        parse_backpressure(bp) if bp is not None else None,
                        parse_subtask_metrics(rates) if rates is not None else {},
                        parse_watermark(rates) if rates is not None else None,
                    )
                )
        detail = {
            "jid": job.jid,
            "state": job.state,
            "restarts": restarts,
            "checkpoints": None
            if checkpoints is None
            else {
                "completed": checkpoints.completed,
                "failed": checkpoints.failed,
                "latest_id": checkpoints.latest_id,
                "latest_duration_ms": checkpoints.latest_duration_ms,
                "latest_state_size": checkpoints.latest_state_size,
                "latest_failure": checkpoints.latest_failure,
            },
            "vertices": [
                {
                    "id": v.id,
                    "name": v.name,
                    "backpressure": v.backpressure.level if v.backpressure else None,
                    **{k: v.rates[k] for k in VERTEX_METRICS if k in v.rates},
                }
                for v in vertices
            ],
        }
        return job_samples(job, restarts, checkpoints, vertices, now), detail

    def _user_metric_ids(self, jid: str, vid: str, now: float) -> tuple[str, ...]:
        """A vertex's user metric ids (and its watermark's, see `listed_ids`), listed again every
        `USER_IDS_RELIST`: PyFlink reports a user metric only once it changed (a job with no late events has
        no `lateEvents` at all), so ids appear late."""
        key = (jid, vid)
        cached = self._user_ids.get(key)
        if cached is None or now - cached[1] >= USER_IDS_RELIST:
            body = self._get(f"/jobs/{jid}/vertices/{vid}/subtasks/metrics")
            if len(self._user_ids) > 256:  # jobs come and go: keep the cache bounded
                self._user_ids.clear()
            cached = self._user_ids[key] = (listed_ids(body or []), now)
        return cached[0]

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # close must not raise
                pass


def build(_config: None, ctx: BuildContext) -> FlinkCollector | None:
    return FlinkCollector(ctx.flink) if ctx.flink is not None else None


# No `daemon.collectors.flink` section: the top-level `flink:` section configures (and enables) it.
KIND = CollectorKind("flink", None, build, SPECS)
