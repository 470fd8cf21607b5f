"""The DLQ topic: every DLQ row is also produced to `pipeline.dlq_topic`, value = the raw payload.

Headers: failure_reason, batch_id, source_topic, source_partition, source_offset (all UTF-8 strings), so a
consumer can route and de-duplicate without parsing the payload. Delivery is at-least-once: the job skips
the produce for a batch Redis has already applied, which leaves only a crash between flush and the
Redis EXEC to resend a batch's DLQ records (same headers, so they de-duplicate on batch_id + offset).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa


class DlqProducer:
    """Created lazily; `send` blocks until every record is acknowledged and raises on failure."""

    def __init__(self, conf: dict[str, Any], topic: str, flush_timeout_s: float = 30.0):
        self.conf = {"linger.ms": 5, "enable.idempotence": False, **conf}
        self.topic = topic
        self.flush_timeout_s = flush_timeout_s
        self._producer = None

    def _client(self):
        if self._producer is None:
            from watchtower.kafka.clients import producer_from

            self._producer = producer_from(self.conf, "spark-dlq")
        return self._producer

    def send(self, dlq: pa.Table) -> int:
        if dlq.num_rows == 0:
            return 0
        producer = self._client()
        errors: list[str] = []

        def on_delivery(err, _msg) -> None:
            if err is not None:
                errors.append(str(err))

        for row in dlq.to_pylist():
            headers = [
                ("failure_reason", row["failure_reason"].encode()),
                ("batch_id", str(row["batch_id"]).encode()),
                ("source_topic", (row["source_topic"] or "").encode()),
                ("source_partition", str(row["source_partition"]).encode()),
                ("source_offset", str(row["source_offset"]).encode()),
            ]
            while True:
                try:
                    producer.produce(
                        self.topic,
                        value=row["payload"],
                        key=row["key"],
                        headers=headers,
                        on_delivery=on_delivery,
                    )
                    break
                except BufferError:
                    producer.poll(0.1)
            producer.poll(0)
        left = producer.flush(self.flush_timeout_s)
        if left or errors:
            raise RuntimeError(f"DLQ topic {self.topic}: {left} undelivered, errors: {errors[:3]}")
        return dlq.num_rows

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(self.flush_timeout_s)
            self._producer = None
