"""The Spark job's foreachBatch body (pipelines.spark.batch.BatchWriter) driven by a plain Kafka consumer.

What the reference pipeline writes, without starting Spark: the e2e latency stream and canary keys in
Redis, dead letters on the DLQ topic, the Delta tables (dlq rows by reason). The consumer group commits
after each batch, as the job's source does, so its lag is real.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import redis
from confluent_kafka import Consumer

from pipelines.spark.batch import BatchWriter
from pipelines.spark.delta_sinks import DeltaSinks
from pipelines.spark.kafka_dlq import DlqProducer
from pipelines.spark.kafka_source import ARROW_SCHEMA
from pipelines.spark.redis_sink import RedisSink

MIN = 60_000


class MicroBatches:
    def __init__(self, bootstrap: str, redis_url: str, topic: str, dlq_topic: str, group: str, data_dir: Path) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "session.timeout.ms": 6000,
                "max.poll.interval.ms": 10000,
                "heartbeat.interval.ms": 500,
            }
        )
        self.consumer.subscribe([topic])
        app = f"dash-{group}"
        self.writer = BatchWriter(
            delta=DeltaSinks(data_dir / "delta", app),
            redis_sink=RedisSink(redis.Redis.from_url(redis_url), app, 900, MIN),
            dlq_producer=DlqProducer({"bootstrap.servers": bootstrap}, dlq_topic),
            watermark_delay_ms=10 * MIN,
            window_length_ms=5 * MIN,
            window_slide_ms=MIN,
            max_event_bytes=64 * 1024,
        ).open()
        self.batches = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="micro-batches", daemon=True)

    def start(self) -> MicroBatches:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                msgs = [m for m in self.consumer.consume(num_messages=500, timeout=0.5) if m.error() is None]
                if not msgs:
                    continue
                raw = pa.table(
                    {
                        "topic": [m.topic() for m in msgs],
                        "partition": pa.array([m.partition() for m in msgs], pa.int32()),
                        "offset": pa.array([m.offset() for m in msgs], pa.int64()),
                        "timestamp": pa.array([m.timestamp()[1] * 1000 for m in msgs], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
                        "key": pa.array([m.key() for m in msgs], pa.binary()),
                        "value": pa.array([m.value() for m in msgs], pa.binary()),
                    },
                    schema=ARROW_SCHEMA,
                )
                self.writer.handle(raw, self.batches)
                self.consumer.commit(asynchronous=False)
                self.batches += 1
        except BaseException as exc:  # noqa: BLE001 - surfaced by the test through .error
            self.error = exc

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        close = getattr(self.writer, "close", None)
        if close is not None:
            close()
        self.writer.dlq_producer = None  # drop the producer before the session's broker goes away
        self.consumer.close()


class SparkRun:
    """The real Spark job (pipelines.spark.job.SparkJob) in a thread of this process, on a local session."""

    def __init__(self, pipeline, bootstrap: str, redis_url: str) -> None:
        from pipelines.spark.job import SparkJob, local_session

        self.session = local_session(shuffle_partitions=2)
        self.job = SparkJob(pipeline, {"bootstrap.servers": bootstrap}, redis_url)
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spark-job", daemon=True)

    @property
    def batches(self) -> int:
        return 0 if self.job.writer is None or self.job.writer.last_batch is None else self.job.writer.last_batch + 1

    def start(self) -> SparkRun:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.job.run(self.session, self._stop)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the test through .error
            self.error = exc

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(120)
        self.session.stop()
