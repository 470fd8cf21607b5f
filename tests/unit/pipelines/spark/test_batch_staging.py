"""Staged cold-path rows: complete batches only, oldest first, gone once dropped."""

from __future__ import annotations

import pyarrow as pa

from pipelines.spark.staging import TABLES, BatchStaging


def tables(n: int) -> dict[str, pa.Table]:
    return {name: pa.table({"x": list(range(n)), "t": [name] * n}) for name in TABLES}


def test_put_get_pending_drop(tmp_path) -> None:
    s = BatchStaging(tmp_path / "staging")
    assert s.pending() == []
    s.put(12, tables(3))
    s.put(3, tables(0))
    assert s.pending() == [3, 12]
    got = s.get(12)
    assert set(got) == set(TABLES) and all(got[name].equals(tables(3)[name]) for name in TABLES)
    assert s.get(3)["events"].num_rows == 0
    s.drop(3)
    assert s.pending() == [12]


def test_a_half_written_batch_is_not_pending_and_is_cleaned_up(tmp_path) -> None:
    s = BatchStaging(tmp_path)
    (tmp_path / ".7.tmp").mkdir()
    (tmp_path / ".7.tmp" / "events.arrow").write_bytes(b"partial")
    assert s.pending() == []
    assert not (tmp_path / ".7.tmp").exists()


def test_putting_a_batch_again_replaces_it(tmp_path) -> None:
    s = BatchStaging(tmp_path)
    s.put(1, tables(2))
    s.put(1, tables(5))
    assert s.pending() == [1] and s.get(1)["dlq"].num_rows == 5
