"""The body of foreachBatch, without Spark: raw Arrow rows and a batch id in, every sink updated once.

Order of writes for batch N (each step skips itself if N already reached it, so a replay after a crash at
any point finishes the batch without writing anything twice):

    in foreachBatch (the hot path; Spark commits N when it returns):
    1. DLQ topic                                              guard: Redis applied batch id
    2. Redis MULTI/EXEC, including the applied batch id      guard: Redis applied batch id (WATCHed)
    3. the cold-path rows to local staging (`staging.py`)     atomic rename per batch
    in a background thread (the cold path), while Spark reads batch N+1:
    4. Delta events (MERGE), dlq, late, aggregates (MERGE)   guard: delta app transaction per table
    5. Delta batches row                                      guard: delta app transaction; marks N done
    6. the staged rows are removed

At most one batch is in the background: batch N+1 waits for N's Delta writes before it stages its own,
and a failure there fails N+1 (and the query). `open()` writes whatever is still staged to Delta before
anything else, so a job that died after Spark committed N but before Delta had it loses nothing.
visible_at is stamped at the Redis write, which never waits for Delta.

The watermark for batch N is (max event time of batches < N) - watermark_delay. The running max is in the
batches row of the last finished batch, so a restart resumes it and a replay of N sees the same value.
Cross-batch duplicates are looked up in memory (`RecentIds`, the sink's ids within the watermark horizon),
rebuilt from the events table on open, so a replay classifies exactly as the first attempt did.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.events import FUTURE_EVENT_TIME
from pipelines.spark.delta_sinks import BATCHES_SCHEMA, DeltaSinks
from pipelines.spark.kafka_dlq import DlqProducer
from pipelines.spark.processing import (
    AGG_SCHEMA,
    BUCKET_SCHEMA,
    CONTROL_SCHEMA,
    EVENT_SCHEMA,
    LATE_SCHEMA,
    BatchContext,
    BatchResult,
    SeenLookup,
    dlq_rows,
    next_watermark,
    process,
)
from pipelines.spark.recent_ids import RecentIds
from pipelines.spark.redis_sink import RedisSink
from pipelines.spark.staging import BatchStaging

log = logging.getLogger(__name__)

Processor = Callable[[pa.Table, BatchContext, SeenLookup], BatchResult]


@dataclass
class BatchReport:
    batch_id: int
    status: str  # ok | batch_failed:<ErrorType> | skipped
    counts: dict[str, int] = field(default_factory=dict)
    watermark_ms: int | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    future_rows: int = 0  # of dlq_rows: valid events stamped beyond the skew bound


def failed_batch(raw: pa.Table, ctx: BatchContext, error: BaseException) -> BatchResult:
    """Everything in a batch whose processing raised goes to the DLQ under `batch_failed:<ErrorType>`."""
    return BatchResult(
        batch_id=ctx.batch_id,
        input_rows=raw.num_rows,
        sink=EVENT_SCHEMA.empty_table(),
        dlq=dlq_rows(raw, ctx.batch_id, f"batch_failed:{type(error).__name__}"),
        late=LATE_SCHEMA.empty_table(),
        control=CONTROL_SCHEMA.empty_table(),
        duplicate_rows=0,
        max_event_time_ms=None,
        aggregates=AGG_SCHEMA.empty_table(),
        buckets=BUCKET_SCHEMA.empty_table(),
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ts(ms: int | None) -> datetime | None:
    return None if ms is None else _EPOCH + timedelta(milliseconds=ms)


def _ms(ts: datetime | None) -> int | None:
    return None if ts is None else (ts - _EPOCH) // timedelta(milliseconds=1)


class BatchWriter:
    def __init__(
        self,
        delta: DeltaSinks,
        redis_sink: RedisSink,
        dlq_producer: DlqProducer | None,
        watermark_delay_ms: int,
        window_length_ms: int,
        window_slide_ms: int,
        max_event_bytes: int,
        processor: Processor = process,
        max_future_skew_ms: int | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.delta = delta
        self.redis = redis_sink
        self.dlq_producer = dlq_producer
        self.delay_ms = watermark_delay_ms
        self.length_ms = window_length_ms
        self.slide_ms = window_slide_ms
        self.max_event_bytes = max_event_bytes
        self.max_future_skew_ms = max_future_skew_ms
        self.processor = processor
        self.clock = clock
        self.last_batch: int | None = None
        self.max_event_ms: int | None = None
        self.reports: list[BatchReport] = []
        self.recent = RecentIds()
        self.staging = BatchStaging(Path(delta.root) / "_staging")
        self._cold = futures.ThreadPoolExecutor(1, thread_name_prefix="delta-writer")
        self._inflight: futures.Future | None = None

    def open(self) -> BatchWriter:
        self.delta.open()
        self._write_staged()
        last = self.delta.last_batch()
        if last is not None:
            self.last_batch = last["batch_id"]
            mx = last["max_event_time"]
            self.max_event_ms = _ms(mx)
            log.info("resuming after batch %d, max event time %s", self.last_batch, mx)
        self.recent.load(self.delta.recent_events(self.watermark_ms()))
        return self

    def input_rows(self, batch_id: int) -> int | None:
        """Records this writer handled in `batch_id` (None if it did not handle it)."""
        for report in reversed(self.reports[-16:]):
            if report.batch_id == batch_id:
                return report.counts.get("input_rows")
        return None

    def batch_counts(self, batch_id: int) -> dict[str, int] | None:
        """Outcome counts (input, sink, dlq, late, duplicate, control rows) of `batch_id`, if this writer
        handled it: what the progress stream publishes for the daemon's late / duplicate signals."""
        for report in reversed(self.reports[-16:]):
            if report.batch_id == batch_id:
                return {**report.counts, "future_rows": report.future_rows} if report.counts else None
        return None

    def watermark_ms(self) -> int | None:
        return None if self.max_event_ms is None else self.max_event_ms - self.delay_ms

    def _seen(self, batch_id: int, watermark_ms: int | None) -> SeenLookup:
        def lookup(ids: pa.Array) -> pa.Array:
            return self.recent.seen(ids, batch_id, watermark_ms)

        return lookup

    def handle(self, raw: pa.Table, batch_id: int) -> BatchReport:
        if self.last_batch is not None and batch_id <= self.last_batch:
            log.info("batch %d is already complete: skipped", batch_id)
            return BatchReport(batch_id, "skipped")
        t0 = self.clock()
        started = datetime.fromtimestamp(t0, UTC)
        ctx = BatchContext(
            batch_id,
            self.watermark_ms(),
            self.length_ms,
            self.slide_ms,
            self.max_event_bytes,
            now_ms=int(t0 * 1000),
            max_future_skew_ms=self.max_future_skew_ms,
        )
        self.recent.evict(ctx.watermark_ms)
        status = "ok"
        try:
            result = self.processor(raw, ctx, self._seen(batch_id, ctx.watermark_ms))
        except Exception as exc:  # a poison batch must not stop the stream: dead-letter it whole
            log.exception("batch %d failed: sending its %d records to the DLQ", batch_id, raw.num_rows)
            result = failed_batch(raw, ctx, exc)
            status = f"batch_failed:{type(exc).__name__}"
        result.check_conservation()
        t1 = self.clock()

        applied = self.redis.applied_batch()
        redis_done = applied is not None and applied >= batch_id
        if self.dlq_producer is not None and not redis_done:
            self.dlq_producer.send(result.dlq)
        t2 = self.clock()
        if not redis_done:
            self.redis.write(result)
        t3 = self.clock()

        max_after = next_watermark(self.max_event_ms, result.max_event_time_ms)
        counts = result.counts
        timings = {
            "process_ms": (t1 - t0) * 1000,
            "kafka_ms": (t2 - t1) * 1000,
            "redis_ms": (t3 - t2) * 1000,
            "delta_ms": float("nan"),  # filled in by the background write
        }
        timings["total_ms"] = (self.clock() - t0) * 1000  # the hot path: what this batch kept Spark waiting
        row = {
            "batch_id": batch_id,
            "status": status,
            **counts,
            "watermark": _ts(ctx.watermark_ms),
            "max_event_time": _ts(max_after),
            "started_at": started,
            **timings,
        }
        self.flush()  # the previous batch's Delta writes, usually long done by now
        tables = {
            "events": result.sink,
            "dlq": result.dlq,
            "late": result.late,
            "aggregates": result.aggregates,
            "batches": pa.Table.from_pylist([row], schema=BATCHES_SCHEMA),
        }
        self.staging.put(batch_id, tables)
        self._inflight = self._cold.submit(self._write_cold, batch_id, tables)
        self.last_batch = batch_id
        self.max_event_ms = max_after
        self.recent.add(batch_id, result.sink.column("event_id"), result.sink.column("event_time"))
        future = pc.sum(pc.equal(result.dlq.column("failure_reason"), FUTURE_EVENT_TIME)).as_py() or 0
        report = BatchReport(batch_id, status, counts, ctx.watermark_ms, timings, future)
        self.reports.append(report)
        log.info(
            "batch %d %s %s watermark=%s %.0f ms",
            batch_id,
            status,
            counts,
            ctx.watermark_ms,
            timings["total_ms"],
        )
        return report

    def flush(self) -> None:
        """Wait for the batch whose Delta writes are in the background; re-raise their failure."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            inflight.result()

    def _write_cold(self, batch_id: int, tables: dict[str, pa.Table]) -> None:
        t = self.clock()
        self.delta.merge_events(tables["events"], batch_id)
        self.delta.append("dlq", tables["dlq"], batch_id)
        self.delta.append("late", tables["late"], batch_id)
        self.delta.merge_aggregates(tables["aggregates"], batch_id)
        row = tables["batches"]
        i = row.schema.get_field_index("delta_ms")
        row = row.set_column(i, row.schema.field(i), pa.array([(self.clock() - t) * 1000], pa.float64()))
        self.delta.append("batches", row, batch_id, always=True)
        self.staging.drop(batch_id)

    def _write_staged(self) -> None:
        """Finish, in order, the batches Spark committed but Delta did not get (see the module doc)."""
        for batch_id in self.staging.pending():
            done = self.delta.applied_version("batches")
            if done is not None and done >= batch_id:
                self.staging.drop(batch_id)
                continue
            log.warning(
                "batch %d was committed by Spark but not yet in Delta: writing it from staging", batch_id
            )
            self._write_cold(batch_id, self.staging.get(batch_id))

    def close(self) -> None:
        """Finish the background Delta writes (re-raising their failure) and release the clients."""
        try:
            self.flush()
        finally:
            self._cold.shutdown(wait=True)
            if self.dlq_producer is not None:
                self.dlq_producer.close()
