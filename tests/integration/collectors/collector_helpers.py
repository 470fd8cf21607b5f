"""Raw Kafka rows as the Spark job's source hands them to foreachBatch."""

from __future__ import annotations

import pyarrow as pa

from pipelines.spark.kafka_source import ARROW_SCHEMA


def raw_rows(
    values: list[bytes], first_offset: int = 0, partition: int = 0, topic: str = "orders"
) -> pa.Table:
    n = len(values)
    return pa.table(
        {
            "topic": [topic] * n,
            "partition": pa.array([partition] * n, pa.int32()),
            "offset": pa.array(range(first_offset, first_offset + n), pa.int64()),
            "timestamp": pa.array([0] * n, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "key": pa.array([b"k"] * n, pa.binary()),
            "value": pa.array(values, pa.binary()),
        },
        schema=ARROW_SCHEMA,
    )
