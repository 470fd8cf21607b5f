"""A batch's cold-path rows on local disk until Delta has them: what lets foreachBatch return early.

`BatchWriter` hands the Delta writes of batch N to a background thread and returns, so Spark reads batch
N+1 while Delta commits N. Spark commits N as soon as foreachBatch returns; if the process died before
Delta had N, Spark would never replay it. So the rows go here first (Arrow IPC, one file per table, in a
directory renamed into place when complete), and `BatchWriter.open` writes whatever is still here to
Delta before the first batch of a restarted job. A directory is removed once Delta has its batch.

    <delta root>/_staging/<batch_id>/{events,dlq,late,aggregates,batches}.arrow
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa

TABLES = ("events", "dlq", "late", "aggregates", "batches")


class BatchStaging:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _dir(self, batch_id: int) -> Path:
        return self.root / str(batch_id)

    def put(self, batch_id: int, tables: dict[str, pa.Table]) -> None:
        """Write every table of the batch; the batch appears only when all are on disk."""
        tmp = self.root / f".{batch_id}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name in TABLES:
            table = tables[name]
            with (
                pa.OSFile(str(tmp / f"{name}.arrow"), "wb") as sink,
                pa.ipc.new_file(sink, table.schema) as writer,
            ):
                writer.write_table(table)
        final = self._dir(batch_id)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)

    def get(self, batch_id: int) -> dict[str, pa.Table]:
        d = self._dir(batch_id)
        out = {}
        for name in TABLES:
            with pa.memory_map(str(d / f"{name}.arrow")) as source:
                out[name] = pa.ipc.open_file(source).read_all()
        return out

    def pending(self) -> list[int]:
        """Staged batch ids, oldest first (half-written ones are removed)."""
        if not self.root.is_dir():
            return []
        ids = []
        for p in self.root.iterdir():
            if p.name.startswith("."):
                shutil.rmtree(p, ignore_errors=True)
            elif p.name.isdigit():
                ids.append(int(p.name))
        return sorted(ids)

    def drop(self, batch_id: int) -> None:
        shutil.rmtree(self._dir(batch_id), ignore_errors=True)
