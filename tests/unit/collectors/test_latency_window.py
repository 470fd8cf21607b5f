"""The e2e latency window: weighted percentiles, slow-event estimates, eviction. A numbered table each."""

from __future__ import annotations

import pytest

from watchtower.collectors.e2e_latency import parse_entry
from watchtower.collectors.latency_window import BatchLatency, LatencyWindow, weighted_quantiles


def batch(at: float, count: int, sample: list[float], max_ms: float | None = None) -> BatchLatency:
    return BatchLatency(
        at=at, count=count, max_ms=max(sample) if max_ms is None else max_ms, sample=tuple(sample)
    )


QUANTILE_CASES = [
    # 1. equal weights: nearest rank
    ([(v, 1.0) for v in range(1, 101)], [0.5, 0.95, 0.99, 1.0], [50, 95, 99, 100]),
    # 2. one heavy value dominates
    ([(10, 1.0), (1000, 99.0)], [0.01, 0.02, 0.5], [10, 1000, 1000]),
    # 3. unsorted input, duplicates
    ([(5, 1.0), (1, 1.0), (5, 1.0), (3, 1.0)], [0.25, 0.5, 0.75], [1, 3, 5]),
    # 4. zero weights are ignored
    ([(1, 0.0), (7, 2.0)], [0.5], [7]),
    # 5. nothing: None
    ([], [0.5, 0.99], [None, None]),
]


@pytest.mark.parametrize(("points", "qs", "want"), QUANTILE_CASES)
def test_weighted_quantiles(points, qs, want) -> None:
    assert weighted_quantiles(points, qs) == want


def test_batches_are_weighted_by_their_counts_not_their_sample_sizes() -> None:
    w = LatencyWindow(300)
    w.add(batch(100, 10_000, [1000.0] * 100))  # 10,000 events at 1 s
    w.add(batch(101, 200, [9000.0] * 100))  # 200 events at 9 s
    s = w.stats(now=102)
    assert s.events == 10_200 and s.batches == 2
    # Unweighted, half of the 200 sample values are slow and p95 would be 9 s.
    assert s.quantiles_ms[0.5] == 1000.0 and s.quantiles_ms[0.95] == 1000.0
    assert s.quantiles_ms[0.99] == 9000.0  # the top 1% (102 events) reaches into the slow batch
    assert s.max_ms == 9000.0


SLOW_CASES = [
    # 1. sample is the whole batch: exact
    (batch(0, 4, [1000, 4000, 6000, 7000]), 5000, 2.0),
    # 2. sample of a larger batch: scaled to the count
    (batch(0, 1000, [1000.0] * 90 + [6000.0] * 10), 5000, 100.0),
    # 3. exactly at the threshold is not slow
    (batch(0, 2, [5000, 5000]), 5000, 0.0),
    # 4. an empty batch
    (BatchLatency(0, 0, 0.0, ()), 5000, 0.0),
    # 5. no sample: p50/p95/p99/max stand for 50/45/4/1 % of the count
    (BatchLatency(0, 200, 9000.0, (), p50_ms=100, p95_ms=6000, p99_ms=8000), 5000, 100.0),
]


@pytest.mark.parametrize(("b", "threshold_ms", "want"), SLOW_CASES)
def test_slow_events(b: BatchLatency, threshold_ms: float, want: float) -> None:
    assert b.slow_events(threshold_ms) == pytest.approx(want)


def test_window_evicts_batches_older_than_the_window() -> None:
    w = LatencyWindow(60)
    w.add(batch(0, 10, [50_000.0]))
    w.add(batch(30, 10, [100.0]))
    assert w.stats(now=59).max_ms == 50_000.0
    s = w.stats(now=61)
    assert s.max_ms == 100.0 and s.events == 10
    assert w.stats(now=200).events == 0 and w.stats(now=200).quantiles_ms == {}


def test_parse_entry_reads_the_spark_jobs_fields() -> None:
    fields = {
        "source": "spark",
        "batch_id": "3",
        "count": "250",
        "p50_ms": "120.0",
        "p95_ms": "300.0",
        "p99_ms": "410.0",
        "max_ms": "500.0",
        "visible_at_ms": "1795448640123",
        "sample": "[100.0, 200.5]",
    }
    source, b = parse_entry(fields, "1795448640124-0")
    assert source == "spark"
    assert b == BatchLatency(1795448640.123, 250, 500.0, (100.0, 200.5), 120.0, 300.0, 410.0)
    assert parse_entry({"count": "x"}, "1-0") is None
