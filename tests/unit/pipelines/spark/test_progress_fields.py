"""progress_fields: the input size is in Kafka records even when Spark counts the source's chunks."""

from __future__ import annotations

import pytest

from pipelines.spark.progress import offset_records, progress_fields


def progress(rows: int, sources: list) -> dict:
    return {
        "batchId": 3,
        "numInputRows": rows,
        "inputRowsPerSecond": 4.0,
        "processedRowsPerSecond": 2.0,
        "sources": sources,
    }


SOURCES = [{"startOffset": {"o": {"0": 5, "1": 0}}, "endOffset": '{"o": {"0": 10, "1": 20, "2": 3}}'}]
CASES = [
    # (case, sources, records known to the job, spark rows, expected input_rows, expected rate)
    ("job count wins", SOURCES, 30, 2, "30", "60.0"),
    ("offset ranges, new partition from 0", SOURCES, None, 2, "28", "56.0"),
    (
        "first batch: no start offsets",
        [{"startOffset": None, "endOffset": {"o": {"0": 9}}}],
        None,
        2,
        "2",
        "4.0",
    ),
    ("no sources", [], None, 7, "7", "4.0"),
    ("empty batch", SOURCES[:0], None, 0, "0", "0.0"),
]


@pytest.mark.parametrize("case,sources,records,spark_rows,rows,rate", CASES, ids=[c[0] for c in CASES])
def test_input_rows(
    case: str, sources: list, records: int | None, spark_rows: int, rows: str, rate: str
) -> None:
    f = progress_fields(progress(spark_rows, sources), records=records)
    assert (f["input_rows"], f["input_rows_per_second"], f["spark_input_rows"]) == (
        rows,
        rate,
        str(spark_rows),
    )


def test_offset_records_refuses_foreign_offsets() -> None:
    assert offset_records([{"startOffset": {"o": 5}, "endOffset": {"o": 9}}]) is None
    assert offset_records([{"startOffset": "not json", "endOffset": "{}"}]) is None


def test_outcome_counts_are_published_when_the_job_knows_the_batch() -> None:
    counts = {
        "input_rows": 10,
        "sink_rows": 5,
        "dlq_rows": 1,
        "late_rows": 2,
        "duplicate_rows": 1,
        "control_rows": 1,
    }
    f = progress_fields(progress(1, []), records=10, counts=counts)
    assert [f[k] for k in ("sink_rows", "dlq_rows", "late_rows", "duplicate_rows", "control_rows")] == [
        "5",
        "1",
        "2",
        "1",
        "1",
    ]
    unknown = progress_fields(progress(1, []))
    assert unknown["late_rows"] == unknown["duplicate_rows"] == ""
