"""Spark query progress into a Redis stream, for the daemon's throughput and trigger collectors.

One entry per StreamingQueryProgress in `pipeline.progress_stream` (XADD MAXLEN ~ 1000), flat fields so a
reader needs no JSON for the common ones; the layout is documented in docs/pipeline.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from pyspark.sql.streaming import StreamingQueryListener

log = logging.getLogger(__name__)

DURATION_FIELDS = {
    "triggerExecution": "trigger_execution_ms",
    "latestOffset": "latest_offset_ms",
    "queryPlanning": "query_planning_ms",
    "walCommit": "wal_commit_ms",
    "addBatch": "add_batch_ms",
    "commitOffsets": "commit_offsets_ms",
    "getBatch": "get_batch_ms",
}


def progress_fields(progress: dict[str, Any], watermark_ms: int | None = None) -> dict[str, str]:
    """Flatten one progress JSON (as Spark writes it) into stream fields. Pure."""
    durations = progress.get("durationMs") or {}
    state_rows = sum(int(op.get("numRowsTotal", 0)) for op in progress.get("stateOperators") or [])
    sources = progress.get("sources") or []
    fields = {
        "source": "spark",
        "query_id": progress.get("id", ""),
        "run_id": progress.get("runId", ""),
        "name": progress.get("name") or "",
        "timestamp": progress.get("timestamp", ""),
        "batch_id": progress.get("batchId", -1),
        "input_rows": progress.get("numInputRows", 0),
        "input_rows_per_second": progress.get("inputRowsPerSecond", 0.0),
        "processed_rows_per_second": progress.get("processedRowsPerSecond", 0.0),
        "duration_ms": orjson.dumps(durations).decode(),
        "watermark": (progress.get("eventTime") or {}).get("watermark", ""),
        "pipeline_watermark_ms": "" if watermark_ms is None else watermark_ms,
        "state_rows": state_rows,
        "end_offset": orjson.dumps([s.get("endOffset") for s in sources]).decode(),
    }
    for key, name in DURATION_FIELDS.items():
        fields[name] = durations.get(key, 0)
    return {k: str(v) if not isinstance(v, str) else v for k, v in fields.items()}


class RedisProgressListener(StreamingQueryListener):
    """Never raises into Spark: a failed XADD is logged and counted."""

    def __init__(self, client, stream: str, maxlen: int = 1000, watermark: Callable[[], int | None] = lambda: None):
        self.client = client
        self.stream = stream
        self.maxlen = maxlen
        self.watermark = watermark
        self.published = 0
        self.failures = 0

    def onQueryStarted(self, event) -> None:
        pass

    def onQueryProgress(self, event) -> None:
        try:
            fields = progress_fields(orjson.loads(event.progress.json), self.watermark())
            self.client.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)
            self.published += 1
        except Exception:
            self.failures += 1
            log.warning("publishing query progress failed", exc_info=self.failures == 1)

    def onQueryIdle(self, event) -> None:
        pass

    def onQueryTerminated(self, event) -> None:
        pass
