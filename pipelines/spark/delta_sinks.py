"""The Delta tables of the Spark job, written with delta-rs, each write idempotent per micro-batch.

Tables under `<data_dir>/delta/`:

    events      the sink: one row per event_id within the watermark horizon (MERGE on event_id and
                event_time, insert when not matched; the event_time term lets delta-rs skip every file
                outside the batch's event-time range, so a MERGE costs the same on a day-old table as on
                a new one)
    dlq         invalid records and failed batches, with failure_reason and the raw payload
    late        business events older than the batch's watermark, with that watermark
    aggregates  count and amount per (user_id, sliding window), MERGE adding; partitioned by window_start
    batches     one accounting row per micro-batch; written last, so a row here means the batch is done

Every commit carries a delta app transaction (app_id, version = batch_id). Before writing, the table's
`transaction_version(app_id)` is checked: a replayed batch that already reached a table is skipped there.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from pipelines.spark.processing import AGG_SCHEMA, DLQ_SCHEMA, EVENT_SCHEMA, LATE_SCHEMA, TS

log = logging.getLogger(__name__)

BATCHES_SCHEMA = pa.schema(
    [
        ("batch_id", pa.int64()),
        ("status", pa.string()),  # ok | batch_failed:<ErrorType>
        ("input_rows", pa.int64()),
        ("sink_rows", pa.int64()),
        ("dlq_rows", pa.int64()),
        ("late_rows", pa.int64()),
        ("duplicate_rows", pa.int64()),
        ("control_rows", pa.int64()),
        ("watermark", TS),  # the watermark this batch used (null until an event was seen)
        ("max_event_time", TS),  # running max event time after this batch: the next watermark + delay
        ("started_at", TS),
        ("process_ms", pa.float64()),
        ("delta_ms", pa.float64()),
        ("kafka_ms", pa.float64()),
        ("redis_ms", pa.float64()),
        ("total_ms", pa.float64()),
    ]
)

SCHEMAS = {
    "events": EVENT_SCHEMA,
    "dlq": DLQ_SCHEMA,
    "late": LATE_SCHEMA,
    "aggregates": AGG_SCHEMA,
    "batches": BATCHES_SCHEMA,
}
PARTITIONS = {"aggregates": ["window_start"]}


class DeltaSinks:
    """Owns the five tables. Blocking I/O on the local filesystem; errors propagate to the caller."""

    def __init__(self, root: Path, app_id: str):
        self.root = Path(root)
        self.app_id = app_id
        self.tables: dict[str, DeltaTable] = {}

    def path(self, name: str) -> str:
        return str(self.root / name)

    def open(self) -> DeltaSinks:
        self.root.mkdir(parents=True, exist_ok=True)
        for name, schema in SCHEMAS.items():
            path = self.path(name)
            if not DeltaTable.is_deltatable(path):
                DeltaTable.create(path, schema, partition_by=PARTITIONS.get(name), mode="ignore")
            self.tables[name] = DeltaTable(path)
        return self

    def table(self, name: str) -> DeltaTable:
        return self.tables[name]

    def applied_version(self, name: str) -> int | None:
        return self.tables[name].transaction_version(self.app_id)

    def _done(self, name: str, batch_id: int) -> bool:
        v = self.applied_version(name)
        if v is not None and v >= batch_id:
            log.info("batch %d already in %s (app transaction %d): skipped", batch_id, name, v)
            return True
        return False

    def _commit(self, batch_id: int) -> CommitProperties:
        return CommitProperties(
            app_transactions=[Transaction(self.app_id, batch_id)],
            custom_metadata={"watchtower.batch_id": batch_id},
        )

    def append(self, name: str, data: pa.Table, batch_id: int, always: bool = False) -> bool:
        """Append `data` unless this batch already reached the table. Empty data writes nothing."""
        if (data.num_rows == 0 and not always) or self._done(name, batch_id):
            return False
        write_deltalake(
            self.tables[name],
            data.cast(SCHEMAS[name]),
            mode="append",
            commit_properties=self._commit(batch_id),
        )
        return True

    def merge_events(self, sink: pa.Table, batch_id: int) -> dict | None:
        """Insert events whose (event_id, event_time) the table does not hold yet.

        `BatchWriter` has already dropped the duplicates (`RecentIds`); the MERGE keeps the table free of
        a second copy even if it had not. `streamed_exec=False` lets delta-rs build its early filter from
        the source's min/max event_time and prune the target's files by their statistics.

        Returns delta-rs's merge metrics (rows inserted, target files scanned and skipped), or None when
        there was nothing to write.
        """
        if sink.num_rows == 0 or self._done("events", batch_id):
            return None
        return (
            self.tables["events"]
            .merge(
                sink.cast(EVENT_SCHEMA),
                predicate="t.event_id = s.event_id AND t.event_time = s.event_time",
                source_alias="s",
                target_alias="t",
                streamed_exec=False,
                commit_properties=self._commit(batch_id),
            )
            .when_not_matched_insert_all()
            .execute()
        )

    def merge_aggregates(self, aggregates: pa.Table, batch_id: int) -> bool:
        """Add this batch's counts and amounts to the windows already there."""
        if aggregates.num_rows == 0 or self._done("aggregates", batch_id):
            return False
        (
            self.tables["aggregates"]
            .merge(
                aggregates.cast(AGG_SCHEMA),
                predicate="t.window_start = s.window_start AND t.user_id = s.user_id",
                source_alias="s",
                target_alias="t",
                streamed_exec=False,  # lets delta-rs prune window_start partitions from the source's values
                commit_properties=self._commit(batch_id),
            )
            .when_matched_update(
                {"event_count": "t.event_count + s.event_count", "amount_sum": "t.amount_sum + s.amount_sum"}
            )
            .when_not_matched_insert_all()
            .execute()
        )
        return True

    def recent_events(self, since_ms: int | None) -> pa.Table:
        """event_id, event_time and batch_id of the sink rows with event_time >= since_ms (all if None):
        what `RecentIds` is rebuilt from after a restart."""
        ds = self.tables["events"].to_pyarrow_dataset()
        expr = None if since_ms is None else pc.field("event_time") >= pa.scalar(since_ms * 1000, TS)
        return ds.to_table(columns=["event_id", "event_time", "batch_id"], filter=expr)

    def last_batch(self) -> dict | None:
        """The accounting row of the newest finished batch, or None for a fresh pipeline."""
        t = self.tables["batches"].to_pyarrow_table()
        if t.num_rows == 0:
            return None
        i = pc.index(t.column("batch_id"), pc.max(t.column("batch_id"))).as_py()
        return t.slice(i, 1).to_pylist()[0]
