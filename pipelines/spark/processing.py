"""What one micro-batch means, as pure pyarrow: no Spark, no Delta, no Redis.

`process` sorts every input record into exactly one outcome, in this order:

1. dlq        the value breaks the contract (`pipelines.events.validate` gives the reason), or a valid
              event is stamped more than `max_future_skew` ahead (`future_event_time`, `events.is_future`)
2. control    a valid canary or marker event
3. late       a business event with event_time < watermark (the watermark itself is on time)
4. duplicate  an event_id seen at a lower (offset, partition) in this batch, or already in the sink
5. sink       everything else

so `input = sink + dlq + late + duplicate + control` holds by construction (and is asserted).
Sliding-window aggregates and the Redis buckets are computed from the sink rows only, so a dropped
duplicate can never be counted twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.events import CONTROL_TYPES, DEFAULT_MAX_EVENT_BYTES, FUTURE_EVENT_TIME
from pipelines.events_batch import validate_many

TS = pa.timestamp("us", tz="UTC")

EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("order_id", pa.string()),
        ("user_id", pa.string()),
        ("amount", pa.float64()),
        ("event_type", pa.string()),
        ("event_time", TS),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
        ("kafka_timestamp", TS),
        ("batch_id", pa.int64()),
    ]
)
LATE_SCHEMA = EVENT_SCHEMA.append(pa.field("watermark", TS))
DLQ_SCHEMA = pa.schema(
    [
        ("batch_id", pa.int64()),
        ("failure_reason", pa.string()),
        ("source_topic", pa.string()),
        ("source_partition", pa.int32()),
        ("source_offset", pa.int64()),
        ("kafka_timestamp", TS),
        ("key", pa.binary()),
        ("payload", pa.binary()),
    ]
)
AGG_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("window_start", TS),
        ("window_end", TS),
        ("event_count", pa.int64()),
        ("amount_sum", pa.float64()),
    ]
)
BUCKET_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("bucket_start_ms", pa.int64()),
        ("event_count", pa.int64()),
        ("amount_sum", pa.float64()),
    ]
)
CONTROL_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("event_type", pa.string()),
        ("event_time", TS),
        ("kafka_partition", pa.int32()),
    ]
)

# Given candidate event ids, return the ones the sink already holds from *earlier* batches.
SeenLookup = Callable[[pa.Array], pa.Array]


def nothing_seen(ids: pa.Array) -> pa.Array:
    return pa.array([], pa.string())


@dataclass(frozen=True)
class BatchContext:
    batch_id: int
    watermark_ms: int | None  # from batches before this one; None: nothing is late yet
    window_length_ms: int = 300_000
    window_slide_ms: int = 60_000
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    now_ms: int | None = None  # the wall clock when the batch is handled; None: no skew guard
    max_future_skew_ms: int | None = None  # None: no skew guard


@dataclass
class BatchResult:
    batch_id: int
    input_rows: int
    sink: pa.Table
    dlq: pa.Table
    late: pa.Table
    control: pa.Table
    duplicate_rows: int
    max_event_time_ms: int | None  # of the valid business events in this batch, late ones included
    aggregates: pa.Table  # per (user, sliding window) of the sink rows
    buckets: pa.Table  # per (user, window_slide bucket) of the sink rows, for Redis

    @property
    def counts(self) -> dict[str, int]:
        return {
            "input_rows": self.input_rows,
            "sink_rows": self.sink.num_rows,
            "dlq_rows": self.dlq.num_rows,
            "late_rows": self.late.num_rows,
            "duplicate_rows": self.duplicate_rows,
            "control_rows": self.control.num_rows,
        }

    def check_conservation(self) -> None:
        c = self.counts
        accounted = c["sink_rows"] + c["dlq_rows"] + c["late_rows"] + c["duplicate_rows"] + c["control_rows"]
        if accounted != c["input_rows"]:
            raise AssertionError(f"batch {self.batch_id} does not add up: {c}")


def _ms_to_ts(values: pa.Array) -> pa.Array:
    return pc.multiply(values.cast(pa.int64()), 1000).cast(TS)


DECODED_FIELDS = [
    ("failure_reason", pa.string()),  # null when the value is a valid event
    ("event_id", pa.string()),
    ("order_id", pa.string()),
    ("user_id", pa.string()),
    ("amount", pa.float64()),
    ("event_type", pa.string()),
    ("event_time", TS),
]
DECODED_NAMES = tuple(name for name, _ in DECODED_FIELDS)


def decode(raw: pa.RecordBatch | pa.Table, max_event_bytes: int) -> pa.RecordBatch | pa.Table:
    """The raw Kafka rows plus the verdict of `pipelines.events.validate` for every value (computed by
    `events_batch.validate_many`), as typed columns.

    Pure and row-local, so it can run where the records are read (the Spark source's read() in the
    executors, see `decode_source_batch`) and the driver gets typed columns instead of JSON.
    """
    cols = validate_many(raw.column("value").to_pylist(), max_event_bytes)
    columns = [
        pa.array(cols.reason, pa.string()),
        pa.array(cols.event_id, pa.string()),
        pa.array(cols.order_id, pa.string()),
        pa.array(cols.user_id, pa.string()),
        pa.array(cols.amount, pa.float64()),
        pa.array(cols.event_type, pa.string()),
        _ms_to_ts(pa.array(cols.event_time_ms, pa.int64())),
    ]
    out = raw
    for (name, _), col in zip(DECODED_FIELDS, columns, strict=True):
        out = out.append_column(name, col)
    return out


def decode_source_batch(batch: pa.RecordBatch, options: dict[str, str]) -> pa.RecordBatch:
    """`decode` as the Kafka source's `decoder` option (runs in the Spark executors)."""
    return decode(batch, int(options.get("maxEventBytes", DEFAULT_MAX_EVENT_BYTES)))


def is_decoded(raw: pa.Table) -> bool:
    return "failure_reason" in raw.column_names


def parse(raw: pa.Table, max_event_bytes: int) -> tuple[pa.Table, pa.Table]:
    """Split raw Kafka rows into (valid events with source columns, DLQ rows without batch id).

    `raw` may already be decoded (the Spark job decodes in the executors); otherwise it is decoded here.
    """
    if not is_decoded(raw):
        raw = decode(raw, max_event_bytes)
    bad_mask = pc.is_valid(raw.column("failure_reason"))
    ok = raw.filter(pc.invert(bad_mask))
    bad = raw.filter(bad_mask)
    events = pa.table(
        {
            "event_id": ok.column("event_id").cast(pa.string()),
            "order_id": ok.column("order_id").cast(pa.string()),
            "user_id": ok.column("user_id").cast(pa.string()),
            "amount": ok.column("amount").cast(pa.float64()),
            "event_type": ok.column("event_type").cast(pa.string()),
            "event_time": ok.column("event_time").cast(TS),
            "kafka_partition": ok.column("partition").cast(pa.int32()),
            "kafka_offset": ok.column("offset").cast(pa.int64()),
            "kafka_timestamp": ok.column("timestamp").cast(TS),
        }
    )
    dlq = pa.table(
        {
            "failure_reason": bad.column("failure_reason").cast(pa.string()),
            "source_topic": bad.column("topic").cast(pa.string()),
            "source_partition": bad.column("partition").cast(pa.int32()),
            "source_offset": bad.column("offset").cast(pa.int64()),
            "kafka_timestamp": bad.column("timestamp").cast(TS),
            "key": bad.column("key").cast(pa.binary()),
            "payload": bad.column("value").cast(pa.binary()),
        }
    )
    return events, dlq


def flag_future(decoded: pa.Table, now_ms: int, max_skew_ms: int) -> pa.Table:
    """`decoded` with `failure_reason = future_event_time` for every valid event stamped more than
    `max_skew_ms` ahead of min(its Kafka timestamp, now) (vectorised `pipelines.events.is_future`).

    A Kafka timestamp that is missing or not positive (no CreateTime) counts as `now`."""
    if decoded.num_rows == 0:
        return decoded
    reason = decoded.column("failure_reason")
    event_ms = pc.divide(decoded.column("event_time").cast(pa.int64()), 1000)
    produced = pc.divide(decoded.column("timestamp").cast(pa.int64()), 1000)
    produced = pc.if_else(pc.greater(produced, 0), produced, pa.scalar(None, pa.int64()))
    ref = pc.min_element_wise(produced.fill_null(now_ms), pa.scalar(now_ms, pa.int64()))
    future = pc.and_(pc.is_null(reason), pc.greater(event_ms, pc.add(ref, max_skew_ms))).fill_null(False)
    if not pc.any(future).as_py():
        return decoded
    i = decoded.column_names.index("failure_reason")
    flagged = pc.if_else(future, pa.scalar(FUTURE_EVENT_TIME, pa.string()), reason)
    return decoded.set_column(i, decoded.schema.field(i), flagged)


def dlq_rows(raw: pa.Table, batch_id: int, reason: str | list[str]) -> pa.Table:
    """DLQ rows for raw Kafka rows (the whole batch when processing failed)."""
    n = raw.num_rows
    reasons = [reason] * n if isinstance(reason, str) else reason
    return pa.table(
        {
            "batch_id": pa.array([batch_id] * n, pa.int64()),
            "failure_reason": pa.array(reasons, pa.string()),
            "source_topic": raw.column("topic").cast(pa.string()),
            "source_partition": raw.column("partition").cast(pa.int32()),
            "source_offset": raw.column("offset").cast(pa.int64()),
            "kafka_timestamp": raw.column("timestamp").cast(TS),
            "key": raw.column("key").cast(pa.binary()),
            "payload": raw.column("value").cast(pa.binary()),
        },
        schema=DLQ_SCHEMA,
    )


def _with_batch(t: pa.Table, batch_id: int) -> pa.Table:
    return t.append_column("batch_id", pa.array([batch_id] * t.num_rows, pa.int64()))


def first_per_event_id(events: pa.Table) -> pa.Table:
    """Keep, for every event_id, the row at the lowest (offset, partition); deterministic under replay."""
    if events.num_rows == 0:
        return events
    ordered = events.sort_by([("kafka_offset", "ascending"), ("kafka_partition", "ascending")])
    ordered = ordered.append_column("_row", pa.array(range(ordered.num_rows), pa.int64()))
    keep = ordered.group_by("event_id", use_threads=False).aggregate([("_row", "min")]).column("_row_min")
    return ordered.take(keep).drop_columns(["_row"])


def sliding_windows(sink: pa.Table, length_ms: int, slide_ms: int) -> pa.Table:
    """Count and amount per (user, window) over every sliding window [start, start+length) holding an event.

    Windows are aligned to the epoch like Spark's `window(event_time, length, slide)`.
    """
    if sink.num_rows == 0:
        return AGG_SCHEMA.empty_table()
    t_ms = pc.divide(sink.column("event_time").cast(pa.int64()), 1000)
    last_start = pc.multiply(pc.divide(t_ms, slide_ms), slide_ms)  # integer division floors for t >= 0
    parts = []
    for k in range(-(-length_ms // slide_ms)):
        start = pc.subtract(last_start, k * slide_ms)
        inside = pc.greater(pc.add(start, length_ms), t_ms)
        parts.append(
            pa.table(
                {"user_id": sink.column("user_id"), "ws": start, "amount": sink.column("amount")}
            ).filter(inside)
        )
    grouped = (
        pa.concat_tables(parts)
        .group_by(["user_id", "ws"], use_threads=False)
        .aggregate([("amount", "count"), ("amount", "sum")])
    )
    grouped = grouped.sort_by([("ws", "ascending"), ("user_id", "ascending")])
    ws = grouped.column("ws")
    return pa.table(
        {
            "user_id": grouped.column("user_id"),
            "window_start": _ms_to_ts(ws),
            "window_end": _ms_to_ts(pc.add(ws, length_ms)),
            "event_count": grouped.column("amount_count").cast(pa.int64()),
            "amount_sum": grouped.column("amount_sum").cast(pa.float64()),
        },
        schema=AGG_SCHEMA,
    )


def slide_buckets(sink: pa.Table, slide_ms: int) -> pa.Table:
    """Count and amount per (user, window_slide bucket): the Redis hot path sums buckets into windows."""
    if sink.num_rows == 0:
        return BUCKET_SCHEMA.empty_table()
    t_ms = pc.divide(sink.column("event_time").cast(pa.int64()), 1000)
    bucket = pc.multiply(pc.divide(t_ms, slide_ms), slide_ms)
    grouped = (
        pa.table({"user_id": sink.column("user_id"), "b": bucket, "amount": sink.column("amount")})
        .group_by(["user_id", "b"], use_threads=False)
        .aggregate([("amount", "count"), ("amount", "sum")])
    )
    return pa.table(
        {
            "user_id": grouped.column("user_id"),
            "bucket_start_ms": grouped.column("b").cast(pa.int64()),
            "event_count": grouped.column("amount_count").cast(pa.int64()),
            "amount_sum": grouped.column("amount_sum").cast(pa.float64()),
        },
        schema=BUCKET_SCHEMA,
    )


def process(raw: pa.Table, ctx: BatchContext, seen: SeenLookup = nothing_seen) -> BatchResult:
    """Classify one micro-batch of raw Kafka rows. Pure, given a pure `seen` lookup (`ctx.now_ms` is data)."""
    if ctx.now_ms is not None and ctx.max_future_skew_ms is not None:
        if not is_decoded(raw):
            raw = decode(raw, ctx.max_event_bytes)
        raw = flag_future(raw, ctx.now_ms, ctx.max_future_skew_ms)
    events, bad = parse(raw, ctx.max_event_bytes)
    dlq = _with_batch(bad, ctx.batch_id).select(DLQ_SCHEMA.names).cast(DLQ_SCHEMA)
    events = _with_batch(events, ctx.batch_id)

    is_control = pc.is_in(events.column("event_type"), pa.array(sorted(CONTROL_TYPES)))
    control = events.filter(is_control).select(CONTROL_SCHEMA.names)
    business = events.filter(pc.invert(is_control))

    event_ms = pc.divide(business.column("event_time").cast(pa.int64()), 1000)
    max_event_ms = pc.max(event_ms).as_py() if business.num_rows else None
    if ctx.watermark_ms is None:
        late = LATE_SCHEMA.empty_table()
        on_time = business
    else:
        is_late = pc.less(event_ms, ctx.watermark_ms)
        late_rows = business.filter(is_late)
        late = late_rows.append_column(
            "watermark", _ms_to_ts(pa.array([ctx.watermark_ms] * late_rows.num_rows, pa.int64()))
        ).cast(LATE_SCHEMA)
        on_time = business.filter(pc.invert(is_late))

    unique = first_per_event_id(on_time)
    already = (
        seen(unique.column("event_id").combine_chunks()) if unique.num_rows else pa.array([], pa.string())
    )
    if len(already):
        unique = unique.filter(pc.invert(pc.is_in(unique.column("event_id"), already)))
    sink = unique.sort_by([("kafka_partition", "ascending"), ("kafka_offset", "ascending")]).cast(
        EVENT_SCHEMA
    )
    duplicates = on_time.num_rows - sink.num_rows

    result = BatchResult(
        batch_id=ctx.batch_id,
        input_rows=raw.num_rows,
        sink=sink,
        dlq=dlq,
        late=late,
        control=control.cast(CONTROL_SCHEMA),
        duplicate_rows=duplicates,
        max_event_time_ms=max_event_ms,
        aggregates=sliding_windows(sink, ctx.window_length_ms, ctx.window_slide_ms),
        buckets=slide_buckets(sink, ctx.window_slide_ms),
    )
    result.check_conservation()
    return result


def next_watermark(previous_max_ms: int | None, result_max_ms: int | None) -> int | None:
    """The running max event time after a batch (the watermark is this minus the delay)."""
    if previous_max_ms is None:
        return result_max_ms
    if result_max_ms is None:
        return previous_max_ms
    return max(previous_max_ms, result_max_ms)
