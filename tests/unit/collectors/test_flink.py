"""The Flink REST parsers against answers captured from the reference job (fixtures/flink/<label>/),
and the collector end to end over an in-memory transport that serves those captures."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from watchtower.collectors.base import Collector
from watchtower.collectors.flink import (
    Backpressure,
    Checkpoints,
    FlinkCollector,
    FlinkUnavailable,
    JobRef,
    VertexStats,
    job_samples,
    jobs_to_report,
    parse_backpressure,
    parse_checkpoints,
    parse_job_metrics,
    parse_subtask_metrics,
    parse_vertices,
    parse_watermark,
    user_metric_ids,
    user_samples,
)
from watchtower.config.flink import FlinkConfig
from watchtower.core.types import labels

FIXTURES = Path(__file__).parent / "fixtures" / "flink"
JOB = "watchtower-flink-reference"


def load(label: str, name: str) -> Any:
    return json.loads((FIXTURES / label / f"{name}.json").read_text())


def overview_with(*jobs: tuple[str, str, str, int]) -> dict[str, Any]:
    """The captured overview's job entry, repeated with (jid, name, state, start-time) swapped in."""
    template = load("running", "overview")["jobs"][0]
    return {
        "jobs": [
            {**copy.deepcopy(template), "jid": jid, "name": name, "state": state, "start-time": start}
            for jid, name, state, start in jobs
        ]
    }


# ---- /jobs/overview ----------------------------------------------------------------------------------

JOBS_CASES = [
    # (id, overview, watched, expected [(jid, state)])
    (
        "1 captured running job",
        load("running", "overview"),
        (),
        [("d6611e86110d70a0d1af8597d6f07ced", "running")],
    ),
    ("2 no jobs", {"jobs": []}, (JOB,), []),
    (
        "3 resubmitted: newest run of a name wins",
        overview_with(("old", JOB, "CANCELED", 1), ("new", JOB, "RUNNING", 2)),
        (),
        [("new", "running")],
    ),
    ("4 finished unwatched job left out", overview_with(("a", "batch", "FINISHED", 1)), (), []),
    ("5 failed watched job kept", overview_with(("a", JOB, "FAILED", 1)), (JOB,), [("a", "failed")]),
    ("6 restarting job kept", overview_with(("a", "other", "RESTARTING", 1)), (), [("a", "restarting")]),
]


@pytest.mark.parametrize(
    ("overview", "watched", "expected"), [c[1:] for c in JOBS_CASES], ids=[c[0] for c in JOBS_CASES]
)
def test_jobs_to_report(overview: dict, watched: tuple[str, ...], expected: list[tuple[str, str]]) -> None:
    assert [(j.jid, j.state) for j in jobs_to_report(overview, watched)] == expected


# ---- /jobs/:jid/checkpoints --------------------------------------------------------------------------

CHECKPOINT_CASES = [
    (
        "1 captured: running job, one failed at startup",
        load("running", "checkpoints"),
        Checkpoints(40, 1, 0, 40, 79, 29656, 29656, 1795449379613),
    ),
    (
        "2 captured: backpressured job, a checkpoint in progress",
        load("backpressured", "checkpoints"),
        Checkpoints(5, 1, 1, 5, 6429, 173657, 173657, 1795449527979),
    ),
    (
        "3 captured: before the first checkpoint (latest.completed null)",
        load("starting", "checkpoints"),
        Checkpoints(0, 0, 0),
    ),
    (
        "4 captured: crash-looping job, every checkpoint failed",
        load("restarting", "checkpoints"),
        Checkpoints(0, 4, 0, latest_failure="Checkpoint Coordinator is suspending."),
    ),
    ("5 empty body", {}, Checkpoints(0, 0, 0)),
]


@pytest.mark.parametrize(
    ("body", "expected"), [c[1:] for c in CHECKPOINT_CASES], ids=[c[0] for c in CHECKPOINT_CASES]
)
def test_parse_checkpoints(body: dict, expected: Checkpoints) -> None:
    assert parse_checkpoints(body) == expected


# ---- vertices, backpressure, metrics -----------------------------------------------------------------


def test_parse_vertices_from_captured_job() -> None:
    vertices = parse_vertices(load("running", "job"))
    assert [vid for vid, _ in vertices] == [
        "cbc357ccb763df2852fee8c4fc7d55f2",
        "bebcb763b73c9eebd3c188bf7c0767bd",
    ]
    assert vertices[0][1].startswith("Source: ticks")
    assert vertices[1][1].startswith("user-windows")


BACKPRESSURE_CASES = [
    (
        "1 captured source: busyRatio is the string NaN",
        load("running", "backpressure-0"),
        Backpressure("ok", 0.0, None),
    ),
    ("2 captured window vertex", load("running", "backpressure-1"), Backpressure("ok", 0.0, 0.149)),
    ("3 captured busy window at startup", load("starting", "backpressure-1"), Backpressure("ok", 0.0, 1.0)),
    (
        "4 captured backpressured source",
        load("backpressured", "backpressure-0"),
        Backpressure("low", 0.337, None),
    ),
    (
        "5 captured saturated window vertex",
        load("backpressured", "backpressure-1"),
        Backpressure("ok", 0.0, 0.988),
    ),
    (
        "6 highest subtask wins",
        {
            "backpressureLevel": "high",
            "subtasks": [
                {"subtask": 0, "ratio": 0.2, "busyRatio": 0.1},
                {"subtask": 1, "ratio": 0.9, "busyRatio": "NaN"},
            ],
        },
        Backpressure("high", 0.9, 0.1),
    ),
    (
        "7 no subtasks yet",
        {"status": "ok", "backpressureLevel": "ok", "subtasks": []},
        Backpressure("ok", 0.0, None),
    ),
]


@pytest.mark.parametrize(
    ("body", "expected"), [c[1:] for c in BACKPRESSURE_CASES], ids=[c[0] for c in BACKPRESSURE_CASES]
)
def test_parse_backpressure(body: dict, expected: Backpressure) -> None:
    assert parse_backpressure(body) == expected


def test_parse_subtask_metrics_sums_over_subtasks() -> None:
    assert parse_subtask_metrics(load("running", "subtask_metrics-1")) == {
        "numRecordsInPerSecond": 50.0,
        "numRecordsOutPerSecond": 0.0,
    }
    # an id asked for but unknown to Flink comes back without aggregates
    assert parse_subtask_metrics([{"id": "nope"}]) == {}


LONG_MIN = -9223372036854775808


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # the highest subtask's watermark, epoch ms (Flink aggregates min/max/avg/sum over subtasks)
        (
            [{"id": "currentInputWatermark", "min": 1.7e12, "max": 1.8e12, "avg": 1.75e12, "sum": 3.5e12}],
            1.8e12,
        ),
        # before the first watermark, or a source without input: Long.MIN_VALUE
        (
            [
                {
                    "id": "currentInputWatermark",
                    "min": LONG_MIN,
                    "max": LONG_MIN,
                    "avg": LONG_MIN,
                    "sum": LONG_MIN,
                }
            ],
            None,
        ),
        ([{"id": "currentInputWatermark"}], None),  # asked for, unknown to this vertex
        ([{"id": "numRecordsInPerSecond", "max": 5.0, "sum": 5.0}], None),
    ],
)
def test_parse_watermark(body: list, expected: float | None) -> None:
    assert parse_watermark(body) == expected
    assert "currentInputWatermark" not in parse_subtask_metrics(body)  # a watermark does not add up


@pytest.mark.parametrize(
    ("marks", "now", "expected"),
    [
        ((None, 1_000_000.0), 1_010.0, 0.0),  # 10 s behind the clock: not ahead
        ((None, 1_000_000.0, 1_020_000.0), 1_010.0, 10.0),  # the highest vertex counts
        ((None, 1_000_000.0 + 365 * 86_400_000), 1_000.0, 365 * 86_400.0),  # poisoned by a year-ahead event
        ((None, None), 1_000.0, None),  # no watermark yet: no sample, not 0
    ],
)
def test_job_samples_watermark_ahead_of_the_clock(marks: tuple, now: float, expected: float | None) -> None:
    vertices = [VertexStats(f"v{i}", f"op{i}", None, {}, m) for i, m in enumerate(marks)]
    got = {
        s.labels: s.value
        for s in job_samples(JobRef("j", JOB, "running", 0), None, None, vertices, now)
        if s.metric == "watchtower_watermark_ahead_seconds"
    }
    assert got == ({} if expected is None else {JL: pytest.approx(expected)})


def test_parse_job_metrics_values_are_strings() -> None:
    assert parse_job_metrics(load("running", "job_metrics")) == {"numRestarts": 0.0}
    assert parse_job_metrics([{"id": "numRestarts"}]) == {}


# ---- samples -----------------------------------------------------------------------------------------

JL = labels(engine="flink", job=JOB)


def test_job_samples_units_and_age() -> None:
    job = JobRef("j", JOB, "running", 0)
    cp = Checkpoints(40, 1, 0, 40, 79, 29656, 29656, 1_000_000)
    v = VertexStats("v", "user-windows", Backpressure("ok", 0.25, None), {"numRecordsInPerSecond": 50.0})
    got = {(s.metric, s.labels): s.value for s in job_samples(job, 3.0, cp, [v], now=1_010.5)}
    vl = labels(engine="flink", job=JOB, vertex="user-windows")
    assert got[("watchtower_job_up", JL)] == 1.0
    assert got[("watchtower_job_status", labels(engine="flink", job=JOB, status="running"))] == 1.0
    assert got[("watchtower_job_status", labels(engine="flink", job=JOB, status="failed"))] == 0.0
    assert got[("watchtower_job_restarts_total", JL)] == 3.0
    assert got[("watchtower_checkpoint_duration_seconds", JL)] == pytest.approx(0.079)
    assert got[("watchtower_checkpoint_size_bytes", JL)] == 29656.0
    assert got[("watchtower_checkpoint_age_seconds", JL)] == pytest.approx(10.5)
    assert got[("watchtower_checkpoints_failed_total", JL)] == 1.0
    assert got[("watchtower_backpressure_ratio", vl)] == 0.25
    assert got[("watchtower_records_in_per_second", vl)] == 50.0
    # not answered: left out, never zeroed
    assert ("watchtower_busy_ratio", vl) not in got
    assert ("watchtower_records_out_per_second", vl) not in got


def test_job_samples_before_first_checkpoint_and_not_running() -> None:
    got = {
        s.metric: s.value
        for s in job_samples(JobRef("j", JOB, "restarting", 0), None, Checkpoints(0, 0, 0), [], 0.0)
    }
    assert got["watchtower_job_up"] == 0.0
    assert got["watchtower_checkpoints_completed_total"] == 0.0
    assert "watchtower_checkpoint_duration_seconds" not in got
    assert "watchtower_job_restarts_total" not in got


FUTURE = labels(engine="flink", job=JOB, outcome="future")
# What a parse vertex of the reference job lists: operator-scoped ids, the user metrics among Flink's own.
LISTED = [
    {"id": "numRecordsInPerSecond"},
    {"id": "FlatMap__parse.futureEvents"},
    {"id": "FlatMap__parse.skippedEvents"},
    {"id": "FlatMap__parse.futureEventsPerSecond"},
    {"id": "FlatMap__parse.numRecordsIn"},
    {"id": "Map__late-events.lateEvents"},
]


def test_user_metric_ids_are_picked_by_their_name_under_any_operator() -> None:
    assert user_metric_ids(LISTED) == (
        "FlatMap__parse.futureEvents",
        "FlatMap__parse.futureEventsPerSecond",
        "FlatMap__parse.skippedEvents",
        "Map__late-events.lateEvents",
    )
    assert user_metric_ids([{"id": "numRecordsInPerSecond"}, {}]) == ()


def test_user_samples_sum_over_vertices_and_leave_out_what_no_vertex_reports() -> None:
    parse = VertexStats(
        "a", "parse", None, {"FlatMap__parse.futureEvents": 7.0, "numRecordsInPerSecond": 9.0}
    )
    parse2 = VertexStats(
        "b",
        "parse-2",
        None,
        {"FlatMap__parse.futureEvents": 3.0, "FlatMap__parse.futureEventsPerSecond": 0.5},
    )
    windows = VertexStats("c", "user-windows", None, {"Map__late-events.lateEvents": 0.0})
    got = {(s.metric, s.labels): s.value for s in user_samples(JOB, [parse, parse2, windows])}
    assert got == {
        ("watchtower_pipeline_records_total", FUTURE): 10.0,
        ("watchtower_pipeline_records_total", labels(engine="flink", job=JOB, outcome="late")): 0.0,
        ("watchtower_pipeline_outcome_per_second", FUTURE): 0.5,
    }  # no skippedEvents reported: no `skipped` sample rather than a 0
    assert user_samples(JOB, [VertexStats("d", "src", None, {"numRecordsInPerSecond": 1.0})]) == []


def job_api(
    job: dict[str, Any], metrics: Callable[[str, str | None], Any], requests: list[str] | None = None
) -> httpx.MockTransport:
    """Flink's REST API for the captured running job; `metrics(vertex, ?get= or None)` answers the
    subtask-metrics endpoint (None: the listing). `requests` collects each URL asked for."""

    def handler(request: httpx.Request) -> httpx.Response:
        if requests is not None:
            requests.append(str(request.url.copy_with(scheme="http", host="x", port=None)))
        match request.url.path.strip("/").split("/"):
            case ["jobs", "overview"]:
                return httpx.Response(200, json=load("running", "overview"))
            case ["jobs", _]:
                return httpx.Response(200, json=job)
            case ["jobs", _, "vertices", vid, "subtasks", "metrics"]:
                return httpx.Response(200, json=metrics(vid, request.url.params.get("get")))
        return httpx.Response(404, json={"errors": ["Not found"]})

    return httpx.MockTransport(handler)


def test_collector_lists_user_metrics_once_and_reads_them_with_the_rates() -> None:
    requests: list[str] = []
    job = load("running", "job")

    def metrics(vertex: str, wanted: str | None) -> Any:
        return LISTED if wanted is None else [{"id": i, "sum": 4.0} for i in wanted.split(",")]

    c = FlinkCollector(FlinkConfig(), transport=job_api(job, metrics, requests))
    first = c.collect(now=0.0)
    assert first.values("watchtower_pipeline_records_total")[FUTURE] == 4.0 * len(job["vertices"])
    assert first.values("watchtower_pipeline_outcome_per_second") == {FUTURE: 4.0 * len(job["vertices"])}
    listings = [u for u in requests if u.endswith("/subtasks/metrics")]
    assert len(listings) == len(job["vertices"])
    requests.clear()
    c.collect(now=1.0)
    assert not [u for u in requests if u.endswith("/subtasks/metrics")]  # cached per (job, vertex)
    c.collect(now=31.0)  # listed again: PyFlink reports a user metric only after its first change
    assert len([u for u in requests if u.endswith("/subtasks/metrics")]) == len(job["vertices"])


def test_collector_asks_each_vertex_only_for_ids_it_lists() -> None:
    """Flink answers a `?get=` naming one unknown id with `[]` for the whole list: the source vertex has no
    task-level currentInputWatermark, so asking it for one lost its rates and user metrics."""
    job = load("running", "job")
    source, windows = (v["id"] for v in job["vertices"])
    now_ms = 1_000_000_000.0
    listed = {
        source: [{"id": "numRecordsInPerSecond"}, {"id": "numRecordsOutPerSecond"}, {"id": "p.futureEvents"}],
        windows: [
            {"id": "numRecordsInPerSecond"},
            {"id": "numRecordsOutPerSecond"},
            {"id": "currentInputWatermark"},
        ],
    }
    watermark = {"min": now_ms - 5_000, "max": now_ms + 120_000, "avg": now_ms, "sum": 2 * now_ms}

    def metrics(vertex: str, wanted: str | None) -> Any:
        if wanted is None:
            return listed[vertex]
        if not set(wanted.split(",")) <= {m["id"] for m in listed[vertex]}:
            return []  # what Flink does
        return [
            {"id": i, **(watermark if i == "currentInputWatermark" else {"sum": 3.0, "max": 3.0})}
            for i in wanted.split(",")
        ]

    r = FlinkCollector(FlinkConfig(), transport=job_api(job, metrics)).collect(now=now_ms / 1000)
    name = load("running", "overview")["jobs"][0]["name"]
    by_vertex = r.values("watchtower_records_in_per_second")
    assert len(by_vertex) == 2 and set(by_vertex.values()) == {3.0}  # the source's rates too
    assert r.values("watchtower_pipeline_records_total") == {
        labels(engine="flink", job=name, outcome="future"): 3.0
    }
    assert r.values("watchtower_watermark_ahead_seconds") == {labels(engine="flink", job=name): 120.0}


# ---- the collector over an in-memory transport -------------------------------------------------------


def serve(label: str, vanished: frozenset[str] = frozenset()) -> httpx.MockTransport:
    """Answers the collector's requests from one fixture directory, like the JobManager would."""
    job = load(label, "job")
    vertex_index = {v["id"]: n for n, v in enumerate(job["vertices"])}

    def handler(request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")
        if parts == ["jobs", "overview"]:
            return httpx.Response(200, json=load(label, "overview"))
        if len(parts) >= 2 and parts[1] in vanished:
            return httpx.Response(404, json={"errors": ["Job could not be found."]})
        match parts:
            case ["jobs", _]:
                return httpx.Response(200, json=job)
            case ["jobs", _, "metrics"]:
                return httpx.Response(200, json=load(label, "job_metrics"))
            case ["jobs", _, "checkpoints"]:
                return httpx.Response(200, json=load(label, "checkpoints"))
            case ["jobs", _, "vertices", vid, "backpressure"]:
                return httpx.Response(200, json=load(label, f"backpressure-{vertex_index[vid]}"))
            case ["jobs", _, "vertices", vid, "subtasks", "metrics"]:
                return httpx.Response(200, json=load(label, f"subtask_metrics-{vertex_index[vid]}"))
        return httpx.Response(404, json={"errors": ["Not found"]})

    return httpx.MockTransport(handler)


def test_collector_reads_a_running_job_and_only_emits_declared_metrics() -> None:
    c = FlinkCollector(FlinkConfig(), transport=serve("running"))
    assert isinstance(c, Collector)
    r = c.collect(now=1795449380.0)
    declared = {s.name: set(s.label_names) for s in c.specs}
    for s in r.samples:
        assert {k for k, _ in s.labels} == declared[s.metric], s.metric
        assert not math.isnan(s.value)
    assert r.values("watchtower_checkpoint_duration_seconds") == {JL: pytest.approx(0.079)}
    assert r.values("watchtower_job_restarts_total") == {JL: 0.0}
    rates_in = r.values("watchtower_records_in_per_second")
    assert len(rates_in) == 2 and max(rates_in.values()) == 50.0
    assert r.detail["jobs"][JOB]["checkpoints"]["latest_id"] == 40
    c.close()
    c.close()  # idempotent


def test_collector_reads_a_backpressured_job() -> None:
    r = FlinkCollector(FlinkConfig(), transport=serve("backpressured")).collect(now=1795449537.979)
    ratios = r.values("watchtower_backpressure_ratio")
    assert sorted(ratios.values()) == [0.0, 0.337]
    assert r.values("watchtower_checkpoint_duration_seconds") == {JL: pytest.approx(6.429)}
    assert r.values("watchtower_checkpoint_age_seconds") == {JL: pytest.approx(10.0)}
    assert r.values("watchtower_checkpoints_in_progress") == {JL: 1.0}


def test_collector_reads_a_restarting_job() -> None:
    """Captured from a job whose window operator failed on every record (no event timestamps)."""
    r = FlinkCollector(FlinkConfig(), transport=serve("restarting")).collect(now=0.0)
    assert r.values("watchtower_job_up") == {JL: 0.0}
    assert r.values("watchtower_job_status")[labels(engine="flink", job=JOB, status="restarting")] == 1.0
    assert r.values("watchtower_job_restarts_total") == {JL: 1.0}
    assert r.values("watchtower_checkpoints_failed_total") == {JL: 4.0}
    assert r.values("watchtower_checkpoint_duration_seconds") == {}
    # vertex figures of a job that is not running are stale: left out
    assert r.values("watchtower_records_in_per_second") == {}
    assert r.detail["jobs"][JOB]["checkpoints"]["latest_failure"] == "Checkpoint Coordinator is suspending."


def test_collector_reports_an_absent_watched_job_as_down() -> None:
    c = FlinkCollector(FlinkConfig(jobs=("orders-enricher",)), transport=serve("running"))
    r = c.collect(now=0.0)
    assert r.values("watchtower_job_up")[labels(engine="flink", job="orders-enricher")] == 0.0
    assert r.values("watchtower_job_up")[JL] == 1.0


def test_collector_tolerates_a_job_that_vanishes_mid_cycle() -> None:
    c = FlinkCollector(
        FlinkConfig(), transport=serve("running", vanished=frozenset({"d6611e86110d70a0d1af8597d6f07ced"}))
    )
    r = c.collect(now=0.0)
    assert r.values("watchtower_job_up") == {JL: 1.0}
    assert r.values("watchtower_checkpoint_duration_seconds") == {}


def test_collector_raises_when_flink_does_not_answer() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    c = FlinkCollector(FlinkConfig(rest_url="http://127.0.0.1:1"), transport=httpx.MockTransport(refuse))
    with pytest.raises(FlinkUnavailable, match=r"127\.0\.0\.1:1 did not answer /jobs/overview"):
        c.collect(now=0.0)


def test_collector_raises_on_server_error() -> None:
    c = FlinkCollector(
        FlinkConfig(), transport=httpx.MockTransport(lambda r: httpx.Response(503, text="busy"))
    )
    with pytest.raises(FlinkUnavailable, match="answered 503"):
        c.collect(now=0.0)


# ---- config ------------------------------------------------------------------------------------------


def test_flink_config_parses_durations_and_checks_values(tmp_path: Path) -> None:
    cfg = FlinkConfig(rest_url="http://jm:8081/", checkpoint_interval="500ms", collect_interval="10s")
    assert (cfg.rest_url, cfg.checkpoint_interval, cfg.collect_interval) == ("http://jm:8081", 0.5, 10.0)
    assert cfg.watched() == (JOB,)
    with pytest.raises(ValueError, match="not an http"):
        FlinkConfig(rest_url="jm:8081")
    with pytest.raises(ValueError, match="flink-sql-connector-kafka"):
        FlinkConfig(kafka_jar=tmp_path / "missing.jar")
    with pytest.raises(ValueError, match="unknown|extra"):
        FlinkConfig(rest_port=1)
