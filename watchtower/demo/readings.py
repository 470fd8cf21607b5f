"""What the demo shows and decides on, read from the real components: the Spark job's accounting table
and progress stream, the e2e latency stream, and consumer-group offsets. Every reader tolerates a
component that is not up yet (returns what it has)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis

from watchtower.contract import E2E_STREAM
from watchtower.demo.accounting import PipelineTotals


class BatchesTable:
    """The Spark job's `batches` Delta table, reloaded incrementally."""

    def __init__(self, path: Path):
        self.path = path
        self._table = None

    def totals(self) -> PipelineTotals:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            if self._table is None:
                self._table = DeltaTable(str(self.path))
            else:
                self._table.update_incremental()
        except TableNotFoundError:
            return PipelineTotals()
        cols = [
            "status",
            "input_rows",
            "sink_rows",
            "dlq_rows",
            "late_rows",
            "duplicate_rows",
            "control_rows",
        ]
        return PipelineTotals.from_rows(self._table.to_pyarrow_table(columns=cols).to_pylist())


def last_progress(client: redis.Redis, stream: str) -> dict[str, str]:
    entries = client.xrevrange(stream, count=1)
    if not entries:
        return {}
    return {k.decode(): v.decode() for k, v in entries[0][1].items()}


def recent_latency(client: redis.Redis, entries: int = 20) -> dict[str, float]:
    """The worst p50/p95 of the last batches' end-to-end latency summaries, in ms."""
    rows = client.xrevrange(E2E_STREAM, count=entries)
    if not rows:
        return {}
    p50 = [float(r[1].get(b"p50_ms", 0)) for r in rows]
    p95 = [float(r[1].get(b"p95_ms", 0)) for r in rows]
    return {"p50_ms": max(p50), "p95_ms": max(p95)}


def snapshot(**parts: Any) -> dict[str, Any]:
    return {k: v for k, v in parts.items() if v is not None}


def _worst(reading, metric: str, **match: str) -> float | None:
    vals = [
        s.value
        for s in reading.samples
        if s.metric == metric and all(dict(s.labels).get(k) == v for k, v in match.items())
    ]
    return max(vals) if vals else None


def watchtower_view(snapshot, health: dict) -> dict[str, Any]:
    """What the daemon measures, condensed for the demo panel: worst lag in seconds per group, e2e p95,
    canary latency, DLQ growth and the Spark checkpoint duration. Pure over a daemon Snapshot."""
    r = snapshot.readings
    view: dict[str, Any] = {"up": sum(1 for h in health.values() if h.up), "collectors": len(health)}
    if "kafka_lag" in r:
        groups = {
            dict(s.labels).get("group")
            for s in r["kafka_lag"].samples
            if s.metric == "watchtower_consumer_lag_seconds"
        }
        view["lag_seconds"] = {
            g: _worst(r["kafka_lag"], "watchtower_consumer_lag_seconds", group=g)
            for g in sorted(g for g in groups if g)
        }
    if "e2e_latency" in r:
        view["e2e_p95_s"] = _worst(r["e2e_latency"], "watchtower_e2e_latency_seconds", quantile="0.95")
    if "canary" in r:
        view["canary_s"] = _worst(r["canary"], "watchtower_canary_latency_seconds")
    if "dlq" in r:
        view["dlq_per_min"] = _worst(r["dlq"], "watchtower_dlq_growth_per_minute")
    if "spark_progress" in r:
        view["checkpoint_s"] = _worst(r["spark_progress"], "watchtower_checkpoint_duration_seconds")
    return view
