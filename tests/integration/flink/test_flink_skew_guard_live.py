"""The Flink job's skew guard on a live local job: a fifth of the generated events is stamped a year ahead
(`--future-ratio 0.2`, no late ones). Flink's own REST API must show them dropped before the watermark
(futureEvents > 0) while the on-time events still fill windows and none is late; watchtower's Flink
collector must export the count and rate, and the packaged `future-events` rule must fire on them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from test_flink_collector_live import FlinkJob, collect_until

from watchtower.collectors.flink import FlinkCollector
from watchtower.config.flink import FlinkConfig
from watchtower.core.types import labels
from watchtower.rules.config import check_rules
from watchtower.rules.packaged import packaged_rules
from watchtower.stack.process import free_port, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.flink]

JOB = "watchtower-flink-skew-it"
FUTURE = labels(engine="flink", job=JOB, outcome="future")
LATE = labels(engine="flink", job=JOB, outcome="late")


@pytest.fixture(scope="module")
def flink_job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlinkJob]:
    args = ("--late-ratio", "0", "--malformed-ratio", "0", "--future-ratio", "0.2")
    job = FlinkJob(free_port(), tmp_path_factory.mktemp("flink") / "job.log", JOB, args)
    try:
        yield job.start()
    finally:
        job.stop()


def flink_metrics(job: FlinkJob) -> dict[str, float]:
    """Every subtask metric of every vertex whose id names records or user events, summed over subtasks,
    straight from Flink's REST API (keys: `<operator>.<metric>`)."""
    rest = job.rest_url
    jid = next(
        j["jid"] for j in httpx.get(f"{rest}/jobs/overview", timeout=5).json()["jobs"] if j["name"] == JOB
    )
    out: dict[str, float] = {}
    for v in httpx.get(f"{rest}/jobs/{jid}", timeout=5).json()["vertices"]:
        base = f"{rest}/jobs/{jid}/vertices/{v['id']}/subtasks/metrics"
        ids = [
            m["id"]
            for m in httpx.get(base, timeout=5).json()
            if "Events" in m["id"] or m["id"].endswith((".numRecordsIn", ".currentInputWatermark"))
        ]
        if ids:
            for m in httpx.get(base, params={"get": ",".join(ids)}, timeout=5).json():
                out[m["id"]] = float(m["sum"])
    return out


def by_suffix(metrics: dict[str, float], suffix: str) -> float | None:
    found = [v for k, v in metrics.items() if k.endswith(suffix)]
    return sum(found) if found else None


def test_future_events_are_dropped_and_on_time_events_fill_windows(flink_job: FlinkJob) -> None:
    got: dict[str, float] = {}

    def settled() -> bool:
        got.clear()
        got.update(flink_metrics(flink_job))
        future = by_suffix(got, ".futureEvents") or 0
        windows_out = got.get("discard-windows__Writer.numRecordsIn", 0)
        return future >= 100 and windows_out >= 50

    wait_until(settled, 120, "100 future events dropped and 50 window results", 1.0)
    now_ms = time.time() * 1000
    into_windows = got["user-windows.numRecordsIn"]
    print(
        f"flink skew guard: futureEvents={by_suffix(got, '.futureEvents'):.0f} "
        f"skippedEvents={by_suffix(got, '.skippedEvents'):.0f} into windows={into_windows:.0f} "
        f"window results={got['discard-windows__Writer.numRecordsIn']:.0f} "
        f"late={by_suffix(got, '.lateEvents') or 0:.0f}"
    )
    # A fifth of the events is a year ahead: dropped, and the rest reach the windows.
    assert by_suffix(got, ".futureEvents") / (
        into_windows + by_suffix(got, ".futureEvents")
    ) == pytest.approx(0.2, abs=0.07)
    # None is late: PyFlink reports lateEvents only once incremented, and the late sink got nothing.
    assert (by_suffix(got, ".lateEvents") or 0) == 0
    assert got["discard-late__Writer.numRecordsIn"] == 0
    # The windows' watermark follows the clock, not the year-ahead stamps.
    watermark = got["user-windows.currentInputWatermark"]
    assert now_ms - 60_000 < watermark < now_ms + 1_000


def test_the_collector_exports_future_events_and_the_skew_rule_fires(flink_job: FlinkJob) -> None:
    collector = FlinkCollector(FlinkConfig(rest_url=flink_job.rest_url, job_name=JOB, request_timeout=5))
    try:
        r = collect_until(
            collector,
            lambda r: (
                r.values("watchtower_pipeline_records_total").get(FUTURE, 0) > 0
                and r.values("watchtower_pipeline_outcome_per_second").get(FUTURE, 0) > 0
            ),
            "the future count and rate in the collector's reading",
            timeout=120,
        )
    finally:
        collector.close()
    counts = r.values("watchtower_pipeline_records_total")
    print(
        f"flink collector: future={counts[FUTURE]:.0f} "
        f"rate={r.values('watchtower_pipeline_outcome_per_second')[FUTURE]:.2f}/s"
    )
    assert counts.get(LATE, 0) == 0  # absent (never incremented) or 0
    rules, problems = check_rules(packaged_rules())
    assert problems == []
    rule = next(x for x in rules.rules if x.name == "future-events")
    results = rule.evaluate([r], r.at)
    fired = {res.labels: res.breaching for res in results}
    assert fired.get(labels(engine="flink", job=JOB)) is True, results


WATERMARK = labels(engine="flink", job=JOB)
UNGUARDED = "watchtower-flink-unguarded-it"


def test_the_guarded_watermark_is_not_ahead_of_the_clock(flink_job: FlinkJob) -> None:
    collector = FlinkCollector(FlinkConfig(rest_url=flink_job.rest_url, job_name=JOB, request_timeout=5))
    try:
        r = collect_until(
            collector,
            lambda r: WATERMARK in r.values("watchtower_watermark_ahead_seconds"),
            "the watermark in the collector's reading",
            timeout=120,
        )
    finally:
        collector.close()
    # Year-ahead events are dropped before the watermark assigner: it stays behind the clock.
    assert r.values("watchtower_watermark_ahead_seconds")[WATERMARK] == 0.0


def test_without_the_guard_the_watermark_jumps_ahead_and_the_rule_pages(tmp_path) -> None:
    """The same job with the skew bound lifted (3 years): one event in a hundred stamped a year ahead moves
    the watermark a year ahead; the collector shows it and `watermark-ahead-of-clock` fires."""
    args = ("--late-ratio", "0", "--malformed-ratio", "0", "--future-ratio", "0.01")
    job = FlinkJob(free_port(), tmp_path / "job.log", UNGUARDED, (*args, "--max-future-skew", "1e8"))
    job.start()
    collector = FlinkCollector(FlinkConfig(rest_url=job.rest_url, job_name=UNGUARDED, request_timeout=5))
    key = labels(engine="flink", job=UNGUARDED)
    try:
        r = collect_until(
            collector,
            lambda r: r.values("watchtower_watermark_ahead_seconds").get(key, 0) > 86_400,
            "a watermark more than a day ahead",
            timeout=120,
        )
    finally:
        collector.close()
        job.stop()
    ahead = r.values("watchtower_watermark_ahead_seconds")[key]
    print(f"flink without the skew guard: watermark {ahead / 86_400:.0f} days ahead of the clock")
    assert 360 * 86_400 < ahead < 370 * 86_400
    rules, problems = check_rules(packaged_rules())
    assert problems == []
    rule = next(x for x in rules.rules if x.name == "watermark-ahead-of-clock")
    fired = {res.labels: res.breaching for res in rule.evaluate([r], r.at)}
    assert fired.get(key) is True
