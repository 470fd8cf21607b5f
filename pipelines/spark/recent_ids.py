"""The event ids the sink holds within the watermark horizon: the cross-batch duplicate lookup, in memory.

A duplicate is an event_id the sink already holds *within the watermark horizon*: a row with that id,
written by an earlier batch, whose event_time is at or after the current batch's watermark. This is
Spark's `dropDuplicatesWithinWatermark` rule. Anything older cannot matter: a redelivered event carries
its original event_time, and an event older than the watermark is classified late before dedupe.

So the lookup needs only the ids of the last `watermark_delay` of event time, not the whole events
table (which grows without bound; scanning it per batch made every batch slower than the one before).
The index holds one chunk per batch (ids and event times as Arrow arrays); a chunk is dropped once the
watermark passes its newest event. After a restart it is rebuilt from the Delta events table, so the
lookup for a replayed batch sees exactly what the first attempt saw.

Memory: ~50 bytes per sink event within the horizon (at 20,000 events/s and a 10-minute watermark,
~600 MB; at the demo's rates, a few MB).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class _Chunk:
    batch_id: int
    ids: pa.Array  # string
    times_ms: pa.Array  # int64 event time, epoch ms
    min_ms: int
    max_ms: int


def _ms(event_time: pa.Array | pa.ChunkedArray) -> pa.Array:
    arr = event_time.combine_chunks() if isinstance(event_time, pa.ChunkedArray) else event_time
    return pc.divide(arr.cast(pa.int64()), 1000)  # timestamp[us] -> epoch ms


class RecentIds:
    def __init__(self) -> None:
        self._chunks: list[_Chunk] = []

    def __len__(self) -> int:
        return sum(len(c.ids) for c in self._chunks)

    def add(self, batch_id: int, event_id: pa.Array | pa.ChunkedArray, event_time: pa.Array | pa.ChunkedArray) -> None:
        """Remember the sink rows of `batch_id` (event_time as timestamp[us])."""
        ids = event_id.combine_chunks() if isinstance(event_id, pa.ChunkedArray) else event_id
        if len(ids) == 0:
            return
        times = _ms(event_time)
        self._chunks.append(_Chunk(batch_id, ids, times, pc.min(times).as_py(), pc.max(times).as_py()))

    def load(self, rows: pa.Table) -> RecentIds:
        """Rebuild from rows of the events table (columns event_id, event_time, batch_id)."""
        if rows.num_rows == 0:
            return self
        rows = rows.sort_by("batch_id")
        runs = pc.run_end_encode(rows.column("batch_id").combine_chunks())
        ends, values = runs.run_ends.to_pylist(), runs.values.to_pylist()
        start = 0
        for batch_id, end in zip(values, ends, strict=True):
            part = rows.slice(start, end - start)
            self.add(batch_id, part.column("event_id"), part.column("event_time"))
            start = end
        return self

    def evict(self, watermark_ms: int | None) -> None:
        """Forget batches whose every event is older than the watermark."""
        if watermark_ms is not None:
            self._chunks = [c for c in self._chunks if c.max_ms >= watermark_ms]

    def seen(self, ids: pa.Array, batch_id: int, watermark_ms: int | None) -> pa.Array:
        """The ids among `ids` that a batch before `batch_id` put in the sink with event_time >= watermark."""
        if len(ids) == 0:
            return pa.array([], pa.string())
        found = []
        for c in self._chunks:
            if c.batch_id >= batch_id or (watermark_ms is not None and c.max_ms < watermark_ms):
                continue
            mask = pc.is_in(c.ids, value_set=ids)
            if watermark_ms is not None and c.min_ms < watermark_ms:
                mask = pc.and_(mask, pc.greater_equal(c.times_ms, watermark_ms))
            hit = c.ids.filter(mask)
            if len(hit):
                found.append(hit)
        return pa.concat_arrays(found) if found else pa.array([], pa.string())
