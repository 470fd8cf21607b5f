"""Row counts of a Delta table by one string column, kept up to date without scanning the table.

Chosen approach: the table's add actions (the data files of the current snapshot, with their
`num_records` and per-column min/max/null-count stats from the log) are the only thing read every cycle,
and only after `update_incremental()` found a new version. The counts are then updated per *file*:

- a file seen before costs nothing;
- a new file whose stats say min == max and no nulls is counted from the stats alone (a DLQ batch with
  a single failure reason, the usual case);
- any other new file is read for that one column only (parquet column projection);
- a file that disappeared (OPTIMIZE, DELETE, VACUUM after a rewrite) has its counts subtracted, which
  is why every counted file's breakdown is remembered (a few bytes per reason per file).

So a cycle with no new version reads one small log file; a new version costs its new files' footers at
most. A full scan, the alternative, costs the whole table every cycle and grows with the DLQ.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable

NULL_KEY = "(null)"


@dataclass
class FileCounts:
    rows: int
    by_value: Counter[str] = field(default_factory=Counter)


def counts_from_stats(
    num_records: int, null_count: int | None, lo: str | None, hi: str | None
) -> Counter[str] | None:
    """The breakdown of one file from its log stats alone, when they determine it; else None. Pure."""
    if num_records == 0:
        return Counter()
    if null_count is not None and null_count == num_records:
        return Counter({NULL_KEY: num_records})
    if null_count == 0 and lo is not None and lo == hi:
        return Counter({lo: num_records})
    return None


class DeltaColumnCounter:
    """Blocking filesystem/object-store I/O; raises what deltalake or pyarrow raise."""

    def __init__(self, path: str, column: str):
        self.path = path
        self.column = column
        self._table: DeltaTable | None = None
        self.version: int | None = None
        self.files: dict[str, FileCounts] = {}
        self.totals: Counter[str] = Counter()
        self.files_read = 0  # files whose column had to be read (for detail and tests)
        self.files_from_stats = 0

    def exists(self) -> bool:
        return self._table is not None or DeltaTable.is_deltatable(self.path)

    def refresh(self) -> bool:
        """Bring the counts to the table's latest version; True when it changed."""
        if self._table is None:
            self._table = DeltaTable(self.path)
        else:
            self._table.update_incremental()
        version = self._table.version()
        if version == self.version:
            return False
        actions = pa.table(self._table.get_add_actions(flatten=True))
        paths = actions.column("path").to_pylist()
        current = set(paths)
        for gone in [p for p in self.files if p not in current]:
            self.totals.subtract(self.files.pop(gone).by_value)
        nrec = actions.column("num_records").to_pylist()
        stat = lambda kind: (  # noqa: E731
            actions.column(f"{kind}.{self.column}").to_pylist()
            if f"{kind}.{self.column}" in actions.column_names
            else [None] * len(paths)
        )
        nulls, lows, highs = stat("null_count"), stat("min"), stat("max")
        for i, p in enumerate(paths):
            if p in self.files:
                continue
            by = (
                counts_from_stats(int(nrec[i] or 0), nulls[i], lows[i], highs[i])
                if nrec[i] is not None
                else None
            )
            if by is None:
                by = self._read_file(p)
                self.files_read += 1
            else:
                self.files_from_stats += 1
            self.files[p] = FileCounts(sum(by.values()), by)
            self.totals.update(by)
        self.totals = +self.totals  # drop zero and negative entries
        self.version = version
        return True

    def _read_file(self, rel: str) -> Counter[str]:
        full = rel if "://" in rel or os.path.isabs(rel) else os.path.join(self.path, rel)
        col = pq.read_table(full, columns=[self.column]).column(self.column)
        out: Counter[str] = Counter()
        nulls = col.null_count
        if nulls:
            out[NULL_KEY] = nulls
        vc = pc.value_counts(col.drop_null() if nulls else col.combine_chunks())
        for item in vc.to_pylist():
            out[str(item["values"])] += int(item["counts"])
        return out

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files.values())
