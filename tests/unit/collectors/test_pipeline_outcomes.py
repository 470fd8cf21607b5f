"""Late / duplicate / DLQ shares and the watermark's skew from progress-stream entries: a table, no Redis."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from watchtower.collectors.pipeline_outcomes import JobOutcomes, PipelineOutcomesConfig, parse_outcome

NOW = 1_800_000_000.0


def entry(batch: int, at: float, run: str = "r1", wm_ms: int | None = None, **counts: int) -> dict[str, str]:
    f = {
        "timestamp": datetime.fromtimestamp(at, UTC).isoformat(),
        "batch_id": str(batch),
        "run_id": run,
        "name": "watchtower-spark",
        "pipeline_watermark_ms": "" if wm_ms is None else str(wm_ms),
    }
    for k in ("input", "sink", "dlq", "late", "duplicate", "control", "future"):
        f[f"{k}_rows"] = str(counts.get(k, 0)) if counts else ""
    return f


def samples(st: JobOutcomes, window: float = 60.0) -> dict[tuple[str, str], float]:
    return {(s.metric, dict(s.labels).get("outcome", "")): s.value for s in st.samples("j", NOW, window)}


CASES = [
    # (case, entries, expected late share, duplicate share, late total, watermark ahead (None: no sample))
    ("1 nothing yet", [], 0.0, 0.0, 0, None),
    ("2 a quarter late", [entry(1, NOW - 5, input=100, sink=75, late=25)], 0.25, 0.0, 25, None),
    (
        "3 shares over the window only",
        [entry(1, NOW - 120, input=100, late=100), entry(2, NOW - 5, input=100, sink=90, duplicate=10)],
        0.0,
        0.1,
        100,
        None,
    ),
    ("4 the same batch twice counts once", [entry(1, NOW - 5, input=10, late=5)] * 2, 0.5, 0.0, 5, None),
    (
        "5 a new run restarts batch ids",
        [entry(7, NOW - 9, input=10, late=5), entry(0, NOW - 5, run="r2", input=10, sink=10)],
        0.25,
        0.0,
        5,
        None,
    ),
    ("6 no counts: a replayed batch", [entry(1, NOW - 5)], 0.0, 0.0, 0, None),
    (
        "7 watermark behind the clock",
        [entry(1, NOW - 5, wm_ms=int((NOW - 600) * 1000), input=1, sink=1)],
        0.0,
        0.0,
        0,
        0.0,
    ),
    (
        "8 poisoned watermark a year ahead",
        [entry(1, NOW - 5, wm_ms=int((NOW + 31_536_000) * 1000), input=1, sink=1)],
        0.0,
        0.0,
        0,
        31_536_000.0,
    ),
]


@pytest.mark.parametrize("case,entries,late,dup,late_total,ahead", CASES, ids=[c[0] for c in CASES])
def test_outcome_signals(
    case: str, entries: list, late: float, dup: float, late_total: int, ahead: float | None
) -> None:
    st = JobOutcomes()
    for e in entries:
        o = parse_outcome(e)
        assert o is not None
        st.fold(o)
    got = samples(st)
    assert got[("watchtower_pipeline_outcome_share", "late")] == pytest.approx(late)
    assert got[("watchtower_pipeline_outcome_share", "duplicate")] == pytest.approx(dup)
    assert got[("watchtower_pipeline_records_total", "late")] == late_total
    assert got.get(("watchtower_watermark_ahead_seconds", "")) == (
        None if ahead is None else pytest.approx(ahead)
    )


def test_rates_are_per_second_over_the_window() -> None:
    st = JobOutcomes()
    st.fold(parse_outcome(entry(1, NOW - 5, input=600, sink=540, late=60)))
    assert samples(st, window=60.0)[("watchtower_pipeline_outcome_per_second", "late")] == pytest.approx(1.0)


def test_not_a_progress_entry() -> None:
    assert parse_outcome({"foo": "bar"}) is None
    assert parse_outcome({"timestamp": "2026-01-01T00:00:00Z", "batch_id": "x"}) is None


def test_config_rejects_a_zero_window() -> None:
    with pytest.raises(ValueError, match="window"):
        PipelineOutcomesConfig(window=0)


def test_a_job_without_future_counts_still_counts_and_future_is_part_of_dlq() -> None:
    old = entry(1, NOW - 5, input=10, sink=9, dlq=1)
    old.pop("future_rows")
    st = JobOutcomes()
    st.fold(parse_outcome(old))
    st.fold(parse_outcome(entry(2, NOW - 4, input=10, sink=9, dlq=1, future=1)))
    got = samples(st)
    assert got[("watchtower_pipeline_records_total", "dlq")] == 2
    assert got[("watchtower_pipeline_records_total", "future")] == 1
    assert got[("watchtower_pipeline_outcome_share", "future")] == pytest.approx(0.05)
