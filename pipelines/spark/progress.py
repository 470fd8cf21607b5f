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


def _offsets(value: Any) -> dict | None:
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    return value if isinstance(value, dict) else None


def offset_records(sources: list[dict[str, Any]]) -> int | None:
    """Records in the batch's offset ranges ({topic: {partition: next offset}} at start and end), or None
    when a source's offsets look different. With `output=arrow` Spark's numInputRows counts chunks, not
    records, so this is the input size that means something; gaps (compaction, transaction markers) make
    it an upper bound."""
    total = 0
    for src in sources:
        start, end = _offsets(src.get("startOffset")), _offsets(src.get("endOffset"))
        if start is None or end is None:
            return None
        for topic, parts in end.items():
            if not isinstance(parts, dict):
                return None
            begin = start.get(topic) or {}
            total += sum(
                max(0, int(o) - int(begin.get(p, 0))) for p, o in parts.items()
            )  # new: from 0, as the source reads
    return total


# Outcome counts of the batch (from the job's BatchWriter), published for the daemon's late / duplicate
# signals; empty strings when the listener does not know the batch (a replayed or skipped one).
OUTCOME_FIELDS = ("sink_rows", "dlq_rows", "late_rows", "duplicate_rows", "control_rows", "future_rows")


def progress_fields(
    progress: dict[str, Any],
    watermark_ms: int | None = None,
    records: int | None = None,
    counts: dict[str, int] | None = None,
) -> dict[str, str]:
    """Flatten one progress JSON (as Spark writes it) into stream fields. Pure.

    `input_rows` and the two rates count Kafka records: `records` when the caller knows them (the job's
    own count for the batch), else the offset ranges when the sources report them in the watchtower_kafka
    form, else Spark's numInputRows. `spark_input_rows` is always Spark's own numInputRows."""
    durations = progress.get("durationMs") or {}
    state_rows = sum(int(op.get("numRowsTotal", 0)) for op in progress.get("stateOperators") or [])
    sources = progress.get("sources") or []
    spark_rows = int(progress.get("numInputRows", 0))
    if records is None and sources:
        records = offset_records(sources)
    rows = spark_rows if records is None else records
    scale = rows / spark_rows if spark_rows else 0.0
    fields = {
        "source": "spark",
        "query_id": progress.get("id", ""),
        "run_id": progress.get("runId", ""),
        "name": progress.get("name") or "",
        "timestamp": progress.get("timestamp", ""),
        "batch_id": progress.get("batchId", -1),
        "input_rows": rows,
        "spark_input_rows": spark_rows,
        "input_rows_per_second": float(progress.get("inputRowsPerSecond", 0.0)) * scale,
        "processed_rows_per_second": float(progress.get("processedRowsPerSecond", 0.0)) * scale,
        "duration_ms": orjson.dumps(durations).decode(),
        "watermark": (progress.get("eventTime") or {}).get("watermark", ""),
        "pipeline_watermark_ms": "" if watermark_ms is None else watermark_ms,
        "state_rows": state_rows,
        "end_offset": orjson.dumps([s.get("endOffset") for s in sources]).decode(),
    }
    for key, name in DURATION_FIELDS.items():
        fields[name] = durations.get(key, 0)
    for name in OUTCOME_FIELDS:
        fields[name] = "" if counts is None or name not in counts else counts[name]
    return {k: str(v) if not isinstance(v, str) else v for k, v in fields.items()}


class RedisProgressListener(StreamingQueryListener):
    """Never raises into Spark: a failed XADD is logged and counted."""

    def __init__(
        self,
        client,
        stream: str,
        maxlen: int = 1000,
        watermark: Callable[[], int | None] = lambda: None,
        records: Callable[[int], int | None] = lambda batch_id: None,
        counts: Callable[[int], dict[str, int] | None] = lambda batch_id: None,
    ):
        self.client = client
        self.counts = counts
        self.records = records
        self.stream = stream
        self.maxlen = maxlen
        self.watermark = watermark
        self.published = 0
        self.failures = 0

    def onQueryStarted(self, event) -> None:
        pass

    def onQueryProgress(self, event) -> None:
        try:
            progress = orjson.loads(event.progress.json)
            batch_id = int(progress.get("batchId", -1))
            fields = progress_fields(
                progress, self.watermark(), self.records(batch_id), self.counts(batch_id)
            )
            self.client.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)
            self.published += 1
        except Exception:
            self.failures += 1
            log.warning("publishing query progress failed", exc_info=self.failures == 1)

    def onQueryIdle(self, event) -> None:
        pass

    def onQueryTerminated(self, event) -> None:
        pass
