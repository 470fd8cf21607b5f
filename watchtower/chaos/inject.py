"""Injecting records for a chaos run: a normal producer, a `chaos` header on every record, and the
expected outcome of each record kept at the (partition, offset) its delivery report gives.

    inj = Injector(kafka_cfg, bootstrap, "orders", scenario="late-beyond-watermark", run_id="r1")
    inj.send(encode(event), key=b"u1", kind="late", outcomes=("late",), event_id=event["event_id"])
    inj.end_markers()          # flush, then one single-record batch per partition (tansu's ListOffsets)
    inj.expected               # [Expected(partition, offset, kind, outcomes, reason, event_id), ...]

Not thread-safe. A record whose delivery failed is kept in `failed` (by error name) and has no
expectation: the conservation verdict judges what the broker acknowledged, and a run reports failures.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import orjson

from pipelines.events import encode, new_event
from watchtower.chaos.verdict import Expected
from watchtower.config.models import KafkaConfig
from watchtower.kafka.clients import producer as make_producer

HEADER = "chaos"
MARKER_USER = "watchtower-chaos"


class Injector:
    def __init__(
        self,
        kafka: KafkaConfig,
        bootstrap: str,
        topic: str,
        scenario: str,
        run_id: str,
        **overrides: Any,
    ):
        self.topic = topic
        self.header = orjson.dumps({"scenario": scenario, "run": run_id})
        self._producer = make_producer(kafka, bootstrap, **overrides)
        self.expected: list[Expected] = []
        self.failed: Counter[str] = Counter()
        self.sent = 0

    def send(
        self,
        value: bytes | None,
        key: bytes | None,
        kind: str,
        outcomes: tuple[str, ...],
        reason: str | None = None,
        event_id: str | None = None,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        def on_delivery(err, msg) -> None:
            if err is not None:
                self.failed[err.name()] += 1
                return
            self.expected.append(Expected(msg.partition(), msg.offset(), kind, outcomes, reason, event_id))

        extra: dict[str, Any] = {} if partition is None else {"partition": partition}
        hdrs = [(HEADER, self.header), *(headers or [])]
        while True:
            try:
                self._producer.produce(
                    self.topic, value=value, key=key, headers=hdrs, on_delivery=on_delivery, **extra
                )
                break
            except BufferError:  # the local queue is full: let librdkafka drain it
                self._producer.poll(0.05)
        self.sent += 1
        self._producer.poll(0)

    def flush(self, timeout: float = 60.0) -> int:
        """Wait for every delivery report; returns how many are still pending."""
        return self._producer.flush(timeout)

    def end_markers(self, partitions: int | None = None) -> None:
        """Flush, then one marker per partition, each flushed alone so it travels as a single-record batch:
        tansu's ListOffsets then reports the true end (docs/pipeline.md)."""
        self.flush()
        if partitions is None:
            partitions = len(self._producer.list_topics(self.topic, timeout=10).topics[self.topic].partitions)
        for p in range(partitions):
            marker = new_event(MARKER_USER, 0.0, "marker", int(time.time() * 1000), order_id="marker")
            self.send(
                encode(marker),
                MARKER_USER.encode(),
                "control",
                ("none",),
                event_id=marker["event_id"],
                partition=p,
            )
            self.flush()

    def close(self) -> None:
        self.flush()
