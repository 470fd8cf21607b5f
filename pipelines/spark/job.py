"""The Spark Structured Streaming job: Kafka -> validate / dedupe / watermark / windows -> Delta + Redis.

Spark does the reading (the `watchtower_kafka` Python source), the offset log and the commit log. The
source validates every value in the executors (`processing.decode`, in parallel) and ships its chunks as
Arrow IPC values (`output=arrow`); every micro-batch is collected once to the driver, unpacked into one
typed Arrow table and handed to `BatchWriter`, which does the rest in vectorised pyarrow and makes every
write idempotent per batch id.

    checkpoint   <data_dir>/checkpoints/spark
    delta tables <data_dir>/delta/{events,dlq,late,aggregates,batches}
    staging      <data_dir>/delta/_staging (a batch's Delta rows until the background write has them)
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines import failpoints
from pipelines.spark.batch import BatchWriter, Processor
from pipelines.spark.delta_sinks import DeltaSinks
from pipelines.spark.kafka_dlq import DlqProducer
from pipelines.spark.kafka_source import ARROW_SCHEMA, FORMAT, KafkaDataSource, unpack_arrow
from pipelines.spark.processing import process
from pipelines.spark.progress import RedisProgressListener
from pipelines.spark.redis_sink import RedisSink
from watchtower.config.models import PipelineConfig

log = logging.getLogger(__name__)

QUERY_NAME = "watchtower-spark"


def app_id(pipeline: PipelineConfig) -> str:
    """The delta app-transaction id; stable for a topic so that a restart recognises its own batches."""
    return f"watchtower-spark:{pipeline.topic}"


def checkpoint_dir(pipeline: PipelineConfig) -> Path:
    return Path(pipeline.data_dir) / "checkpoints" / "spark"


def delta_root(pipeline: PipelineConfig) -> Path:
    return Path(pipeline.data_dir) / "delta"


# C1 only: the JVM side of this job is mostly Spark's fixed per-batch work, where C2 keeps two cores busy
# compiling (0.6-0.8 CPU-s per micro-batch, measured) for code that runs a few times per batch.
DRIVER_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1"


def local_session(
    shuffle_partitions: int = 2, master: str = "local[2]", java_options: str = DRIVER_JAVA_OPTIONS
):
    """A small local SparkSession with the Kafka source registered (workers run this interpreter)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master(master)
        .appName(QUERY_NAME)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.driver.memory", "1g")
        .config("spark.driver.extraJavaOptions", java_options)
        .config("spark.python.worker.reuse", "true")
        .config("spark.sql.streaming.stopTimeout", "30s")
        .config("spark.sql.session.timeZone", "UTC")
        # The checkpoint's offset and commit logs are tiny files written twice per trigger; on a local
        # directory the checksummed filesystem adds a .crc file to each (~75 ms per trigger, measured:
        # trigger 325-350 -> 260-269 ms for 2k-row batches). Renames stay atomic; other schemes unaffected.
        .config("spark.hadoop.fs.file.impl", "org.apache.hadoop.fs.RawLocalFileSystem")
        .config("spark.hadoop.fs.AbstractFileSystem.file.impl", "org.apache.hadoop.fs.local.RawLocalFs")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    spark.dataSource.register(KafkaDataSource)
    return spark


def collect_arrow(df) -> pa.Table:
    """One collect of the micro-batch as Arrow: the decoded chunks of an `output=arrow` source, or raw rows.

    DataFrame.toArrow() insists on pyarrow >= 18, but the environment pins pyarrow 16.1 for Flink; the
    collect path underneath it works with 16.1, so it is called directly.
    """
    batches = df._collect_as_arrow(empty_list_if_zero_records=True)
    if "arrow" in df.columns:
        table = unpack_arrow(batches)
        return ARROW_SCHEMA.empty_table() if table is None else table
    if not batches:
        return ARROW_SCHEMA.empty_table()
    return pa.Table.from_batches(batches).cast(ARROW_SCHEMA)


def has_key_prefix(raw: pa.Table, prefix: str) -> bool:
    """Whether a record of the batch has a Kafka key starting with `prefix` (a failpoint's aim)."""
    want = prefix.encode()
    return any(k is not None and k.startswith(want) for k in raw.column("key").to_pylist())


def checkpoint_is_fresh(path: Path) -> bool:
    offsets = path / "offsets"
    return not offsets.is_dir() or not any(p.name.isdigit() for p in offsets.iterdir())


@dataclass
class SparkJob:
    pipeline: PipelineConfig
    kafka_conf: dict[str, Any]  # librdkafka settings, bootstrap.servers included
    redis_url: str
    starting_offsets: str = "earliest"
    processor: Processor = process

    def __post_init__(self) -> None:
        self.writer: BatchWriter | None = None
        self.query = None
        self._redis = None

    def _build_writer(self) -> BatchWriter:
        import redis

        p = self.pipeline
        self._redis = redis.Redis.from_url(self.redis_url)
        aid = app_id(p)
        delta = DeltaSinks(delta_root(p), aid)
        fresh = checkpoint_is_fresh(checkpoint_dir(p))
        writer = BatchWriter(
            delta=delta,
            redis_sink=RedisSink(self._redis, aid, p.redis_ttl, int(p.window_slide * 1000)),
            dlq_producer=DlqProducer(
                {k: v for k, v in self.kafka_conf.items() if k != "group.id"}, p.dlq_topic
            ),
            watermark_delay_ms=int(p.watermark_delay * 1000),
            window_length_ms=int(p.window_length * 1000),
            window_slide_ms=int(p.window_slide * 1000),
            max_event_bytes=p.max_event_bytes,
            processor=self.processor,
            max_future_skew_ms=int(p.max_future_skew * 1000),
        ).open()
        if fresh and writer.last_batch is not None:
            raise RuntimeError(
                f"the checkpoint {checkpoint_dir(p)} is new but the Delta tables under {delta_root(p)} already hold "
                f"batches up to {writer.last_batch}: restore the checkpoint or clear {p.data_dir}"
            )
        return writer

    def start(self, spark, available_now: bool = False):
        """Start the query; returns the StreamingQuery at once."""
        p = self.pipeline
        self.writer = writer = self._build_writer()
        spark.streams.addListener(
            RedisProgressListener(
                self._redis,
                p.progress_stream,
                watermark=writer.watermark_ms,
                records=writer.input_rows,
                counts=writer.batch_counts,
            )
        )
        reader = (
            spark.readStream.format(FORMAT)
            .option("subscribe", p.topic)
            .option("startingOffsets", self.starting_offsets)
            .option("maxOffsetsPerTrigger", str(p.max_offsets_per_trigger))
            .option("groupId", p.consumer_group)
            .option("output", "arrow")
            .option("tasks", str(spark.sparkContext.defaultParallelism))
            .option("decoder", "pipelines.spark.processing:decode_source_batch")
            .option("maxEventBytes", str(p.max_event_bytes))
        )
        for key, value in self.kafka_conf.items():
            if key != "group.id":
                reader = reader.option(f"kafka.{key}", str(value))

        def for_each_batch(df, batch_id: int) -> None:
            raw = collect_arrow(df)
            writer.handle(raw, batch_id)
            # Every sink has the batch (Delta too, once flushed); Spark writes its commit log and the
            # source commits the group offsets only after this returns: a crash here means redelivery.
            failpoints.hit(
                failpoints.AFTER_WRITE_BEFORE_COMMIT,
                when=lambda prefix: has_key_prefix(raw, prefix),
                before=writer.flush,
            )

        stream = (
            reader.load()
            .writeStream.queryName(QUERY_NAME)
            .foreachBatch(for_each_batch)
            .option("checkpointLocation", str(checkpoint_dir(p)))
        )
        stream = (
            stream.trigger(availableNow=True)
            if available_now
            else stream.trigger(processingTime=f"{int(p.trigger_interval * 1000)} milliseconds")
        )
        self.query = stream.start()
        return self.query

    def run(
        self,
        spark,
        stop: threading.Event,
        available_now: bool = False,
        idle_timeout: float | None = None,
    ) -> None:
        """Block until `stop` is set, the available data is done (available_now) or nothing arrived for
        `idle_timeout` seconds; then stop the query cleanly. Re-raises the query's failure."""
        query = self.start(spark, available_now)
        last_input, handled = time.monotonic(), 0
        try:
            while not stop.is_set():
                if query.awaitTermination(0.5):
                    break
                if len(self.writer.reports) != handled:
                    last_input, handled = time.monotonic(), len(self.writer.reports)
                # Spark's first trigger takes a while to plan: idleness counts from the first batch on.
                idle = time.monotonic() - last_input > max(idle_timeout or 0, 0 if handled else 60)
                if idle_timeout is not None and idle and not query.status["isDataAvailable"]:
                    log.info("no input for %.0fs: stopping", idle_timeout)
                    break
        finally:
            if query.isActive:
                query.stop()
            if self.writer is not None:
                self.writer.close()
        if query.exception() is not None:
            raise RuntimeError(f"the Spark query failed: {query.exception()}")
