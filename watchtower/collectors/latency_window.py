"""End-to-end latency over a sliding window of micro-batches: pure, no Redis.

The pipeline writes one summary per micro-batch: the batch's event count, exact max, p50/p95/p99 and a
uniform sample of up to 100 latencies. A batch of 10,000 events must weigh 100 times a batch of 100, so
every sample value stands for `count / len(sample)` events. Window percentiles are weighted
nearest-rank quantiles over those values; the window max is exact (the max of the batches' maxima).

Slow events per batch are estimated the same way: `count * (sample values above the threshold) /
len(sample)`, which is exact whenever the batch had no more events than the sample holds.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True, slots=True)
class BatchLatency:
    """One micro-batch's latency summary, in milliseconds; `at` is when it became visible (epoch s)."""

    at: float
    count: int
    max_ms: float
    sample: tuple[float, ...]
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0

    def weighted(self) -> list[tuple[float, float]]:
        """(latency ms, events it stands for). A batch without a sample falls back to its percentiles."""
        if self.count <= 0:
            return []
        if self.sample:
            w = self.count / len(self.sample)
            return [(v, w) for v in self.sample]
        c = self.count
        return [
            (self.p50_ms, 0.5 * c),
            (self.p95_ms, 0.45 * c),
            (self.p99_ms, 0.04 * c),
            (self.max_ms, 0.01 * c),
        ]

    def slow_events(self, threshold_ms: float) -> float:
        """Estimated events of this batch slower than `threshold_ms` (strictly above it)."""
        return sum(w for v, w in self.weighted() if v > threshold_ms)


def weighted_quantiles(points: Iterable[tuple[float, float]], qs: Sequence[float]) -> list[float | None]:
    """Nearest-rank quantiles of weighted values: the smallest value whose cumulative weight reaches
    q * total. None for every q when there is no weight."""
    pts = sorted((v, w) for v, w in points if w > 0)
    total = sum(w for _, w in pts)
    if total <= 0:
        return [None for _ in qs]
    cum: list[float] = []
    acc = 0.0
    for _, w in pts:
        acc += w
        cum.append(acc)
    out: list[float | None] = []
    for q in qs:
        target = q * total
        i = bisect.bisect_left(cum, target - 1e-9 * total)
        out.append(pts[min(i, len(pts) - 1)][0])
    return out


@dataclass(frozen=True, slots=True)
class WindowStats:
    batches: int
    events: int
    quantiles_ms: dict[float, float]  # empty when the window holds no events
    max_ms: float | None


class LatencyWindow:
    """Batches visible within the last `window` seconds. `add` keeps arrival order; `stats(now)` evicts."""

    def __init__(self, window: float):
        self.window = window
        self._batches: deque[BatchLatency] = deque()

    def add(self, batch: BatchLatency) -> None:
        self._batches.append(batch)

    def evict(self, now: float) -> None:
        horizon = now - self.window
        # Entries arrive in stream order, which is visibility order; a straggler is dropped when it is at
        # the head, so one out-of-order entry can only linger, never make the window skip newer ones.
        while self._batches and self._batches[0].at < horizon:
            self._batches.popleft()

    def stats(self, now: float, qs: Sequence[float] = QUANTILES) -> WindowStats:
        self.evict(now)
        horizon = now - self.window
        live = [b for b in self._batches if b.at >= horizon and b.count > 0]
        if not live:
            return WindowStats(0, 0, {}, None)
        values = weighted_quantiles((p for b in live for p in b.weighted()), qs)
        return WindowStats(
            batches=len(live),
            events=sum(b.count for b in live),
            quantiles_ms={q: v for q, v in zip(qs, values, strict=True) if v is not None},
            max_ms=max(b.max_ms for b in live),
        )
