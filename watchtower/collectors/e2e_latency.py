"""End-to-end latency (event time -> visible in Redis) from the pipeline's `watchtower:e2e` stream.

Each cycle XREADs the entries added since the last one (see `redis_stream`), adds them to a sliding
window per `source` and counts their events. The first cycle starts `window` seconds back, so the
percentiles are meaningful at once. The arithmetic is in `latency_window`; this file reads Redis.

The counters are cumulative since the daemon started (including that first window): a burn-rate rule
takes their increase, so where they start does not matter, only that they never go back.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from pydantic import Field

from watchtower.collectors.base import BuildContext, CollectorKind, CollectorSection
from watchtower.collectors.latency_window import QUANTILES, BatchLatency, LatencyWindow
from watchtower.collectors.redis_stream import LazyRedis, StreamCursor, redis_errors
from watchtower.contract import E2E_STREAM
from watchtower.core.types import Kind, MetricSpec, Reading, Sample, labels
from watchtower.core.units import Duration


class E2eLatencyConfig(CollectorSection):
    """End-to-end latency from the pipeline's `watchtower:e2e` stream (one entry per micro-batch)."""

    stream: str = E2E_STREAM
    # Percentiles are over the batches whose results became visible within this window.
    window: Duration = Field(default=300.0, gt=0)
    # An event slower than this counts in watchtower_e2e_events_slow_total (the SLO's bad events).
    slo_threshold: Duration = Field(default=5.0, gt=0)
    read_count: int = Field(default=1000, ge=1, description="stream entries per XREAD")


log = logging.getLogger(__name__)

SPECS = (
    MetricSpec(
        "watchtower_e2e_latency_seconds",
        Kind.GAUGE,
        "Event time to visible in Redis, percentile over the window's events (batches weighted by their counts)",
        ("quantile", "source"),
    ),
    MetricSpec(
        "watchtower_e2e_latency_max_seconds",
        Kind.GAUGE,
        "Largest event time to visible latency of any batch in the window (exact)",
        ("source",),
    ),
    MetricSpec(
        "watchtower_e2e_window_events",
        Kind.GAUGE,
        "Events in the latency window (0 when the pipeline wrote nothing in it)",
        ("source",),
    ),
    MetricSpec(
        "watchtower_e2e_events_total",
        Kind.COUNTER,
        "Events the pipeline made visible, as counted in its e2e stream (the SLO's total)",
        ("source",),
    ),
    MetricSpec(
        "watchtower_e2e_events_slow_total",
        Kind.COUNTER,
        "Events slower than daemon.collectors.e2e_latency.slo_threshold, estimated from each batch's sample",
        ("source",),
    ),
)


def parse_entry(fields: dict[str, str], entry_id: str) -> tuple[str, BatchLatency] | None:
    """(source, batch) of one stream entry; None for an entry that is not a latency summary."""
    try:
        count = int(fields.get("count", "0"))
        at_ms = float(fields.get("visible_at_ms") or entry_id.partition("-")[0])
        sample = tuple(float(v) for v in orjson.loads(fields.get("sample") or "[]"))
        return fields.get("source") or "unknown", BatchLatency(
            at=at_ms / 1000,
            count=count,
            max_ms=float(fields.get("max_ms", "0")),
            sample=sample,
            p50_ms=float(fields.get("p50_ms", "0")),
            p95_ms=float(fields.get("p95_ms", "0")),
            p99_ms=float(fields.get("p99_ms", "0")),
        )
    except (ValueError, TypeError, orjson.JSONDecodeError):
        return None


class E2eLatencyCollector:
    """Collector `e2e_latency`. The Redis client is created on first use; `close()` releases it.

    `collect` raises `RedisUnavailable` when Redis does not answer; the window and counters survive, and
    the next successful cycle reads everything written meanwhile.
    """

    specs = SPECS

    def __init__(self, config: E2eLatencyConfig, redis_url: str, name: str = "e2e_latency"):
        self.name = name
        self.interval = config.interval
        self.config = config
        self._redis = LazyRedis(redis_url, config.timeout)
        self._cursor: StreamCursor | None = None
        self._windows: dict[str, LatencyWindow] = {}
        self._events: dict[str, float] = {}
        self._slow: dict[str, float] = {}
        self.skipped = 0

    def observe(self, source: str, batch: BatchLatency) -> None:
        """Count one batch and put it in its source's window (what `collect` does per entry)."""
        self._windows.setdefault(source, LatencyWindow(self.config.window)).add(batch)
        self._events[source] = self._events.get(source, 0.0) + batch.count
        self._slow[source] = self._slow.get(source, 0.0) + batch.slow_events(self.config.slo_threshold * 1000)

    def collect(self, now: float) -> Reading:
        if self._cursor is None:
            self._cursor = StreamCursor(
                self.config.stream, self.config.read_count, start_ms=int((now - self.config.window) * 1000)
            )
        with redis_errors(f"reading stream {self.config.stream}"):
            entries = self._cursor.read(self._redis.get())
        for entry_id, fields in entries:
            parsed = parse_entry(fields, entry_id)
            if parsed is None:
                self.skipped += 1
                continue
            self.observe(*parsed)
        return self.reading(now, read=len(entries))

    def reading(self, now: float, read: int = 0) -> Reading:
        samples: list[Sample] = []
        detail: dict[str, Any] = {
            "stream": self.config.stream,
            "read": read,
            "skipped": self.skipped,
            "sources": {},
        }
        for source, window in sorted(self._windows.items()):
            stats = window.stats(now)
            sl = labels(source=source)
            samples.append(Sample("watchtower_e2e_window_events", sl, float(stats.events)))
            for q in QUANTILES:
                if q in stats.quantiles_ms:
                    samples.append(
                        Sample(
                            "watchtower_e2e_latency_seconds",
                            labels(source=source, quantile=q),
                            max(0.0, stats.quantiles_ms[q] / 1000),
                        )
                    )
            if stats.max_ms is not None:
                samples.append(
                    Sample("watchtower_e2e_latency_max_seconds", sl, max(0.0, stats.max_ms / 1000))
                )
            samples.append(Sample("watchtower_e2e_events_total", sl, self._events.get(source, 0.0)))
            samples.append(Sample("watchtower_e2e_events_slow_total", sl, self._slow.get(source, 0.0)))
            detail["sources"][source] = {
                "window_batches": stats.batches,
                "window_events": stats.events,
                "quantiles_ms": {str(q): v for q, v in stats.quantiles_ms.items()},
                "max_ms": stats.max_ms,
            }
        return Reading(collector=self.name, at=now, samples=tuple(samples), detail=detail)

    def close(self) -> None:
        self._redis.close()


def build(config: E2eLatencyConfig, ctx: BuildContext) -> E2eLatencyCollector | None:
    if not config.enabled or not ctx.redis_url:
        return None
    return E2eLatencyCollector(config, ctx.redis_url)


KIND = CollectorKind("e2e_latency", E2eLatencyConfig, build, SPECS, demo={"interval": 2.0})
