"""The in-memory duplicate lookup: event ids of earlier batches within the watermark horizon."""

from __future__ import annotations

import pyarrow as pa

from pipelines.spark.processing import TS
from pipelines.spark.recent_ids import RecentIds


def ts(ms: list[int]) -> pa.Array:
    return pa.array([m * 1000 for m in ms], pa.int64()).cast(TS)


def index() -> RecentIds:
    r = RecentIds()
    r.add(0, pa.array(["a", "b"]), ts([1_000, 2_000]))
    r.add(1, pa.array(["c"]), ts([3_000]))
    r.add(2, pa.array(["d", "e"]), ts([4_000, 9_000]))
    return r


def test_an_id_from_an_earlier_batch_is_seen() -> None:
    assert index().seen(pa.array(["a", "c", "x"]), 3, None).to_pylist() == ["a", "c"]


def test_rows_of_the_batch_itself_and_later_ones_do_not_count() -> None:
    # a replay of batch 1 must classify as its first attempt did, even though batch 1's rows are in the index
    assert index().seen(pa.array(["a", "c", "d"]), 1, None).to_pylist() == ["a"]


def test_rows_older_than_the_watermark_are_outside_the_horizon() -> None:
    r = index()
    assert r.seen(pa.array(["a", "b", "c", "d", "e"]), 3, 2_000).to_pylist() == ["b", "c", "d", "e"]
    assert r.seen(pa.array(["d", "e"]), 3, 5_000).to_pylist() == ["e"]  # one row of a chunk still inside


def test_evict_drops_only_batches_wholly_behind_the_watermark() -> None:
    r = index()
    r.evict(3_500)
    assert len(r) == 2  # batch 2 (4_000 and 9_000) stays; batches 0 and 1 are gone
    assert r.seen(pa.array(["a", "c", "d"]), 3, None).to_pylist() == ["d"]
    r.evict(None)
    assert len(r) == 2


def test_rebuilding_from_table_rows_equals_the_incremental_index() -> None:
    rows = pa.table(
        {
            "event_id": ["e", "a", "c", "b", "d"],
            "event_time": ts([9_000, 1_000, 3_000, 2_000, 4_000]),
            "batch_id": pa.array([2, 0, 1, 0, 2], pa.int64()),
        }
    )
    rebuilt = RecentIds().load(rows)
    probe = pa.array(["a", "b", "c", "d", "e", "z"])
    for batch_id in range(4):
        for watermark in (None, 2_500, 8_000):
            assert sorted(rebuilt.seen(probe, batch_id, watermark).to_pylist()) == sorted(
                index().seen(probe, batch_id, watermark).to_pylist()
            )
    assert len(rebuilt) == 5


def test_empty_inputs() -> None:
    r = RecentIds()
    r.add(0, pa.array([], pa.string()), ts([]))
    assert len(r) == 0
    assert r.seen(pa.array(["a"]), 1, None).to_pylist() == []
    assert index().seen(pa.array([], pa.string()), 5, None).to_pylist() == []
    assert (
        len(
            RecentIds().load(
                pa.table(
                    {
                        "event_id": pa.array([], pa.string()),
                        "event_time": ts([]),
                        "batch_id": pa.array([], pa.int64()),
                    }
                )
            )
        )
        == 0
    )
