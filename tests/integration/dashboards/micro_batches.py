"""The jobs the panel proof runs: the Spark job's foreachBatch body (pipelines.spark.batch.BatchWriter) driven by a plain Kafka consumer.

What the reference pipeline writes, without starting Spark: the e2e latency stream and canary keys in
Redis, dead letters on the DLQ topic, the Delta tables (dlq rows by reason). The consumer group commits
after each batch, as the job's source does, so its lag is real.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pyarrow as pa
import redis
from confluent_kafka import Consumer

from pipelines.spark.batch import BatchWriter
from pipelines.spark.delta_sinks import DeltaSinks
from pipelines.spark.kafka_dlq import DlqProducer
from pipelines.spark.kafka_source import ARROW_SCHEMA
from pipelines.spark.redis_sink import RedisSink
from watchtower.stack.process import wait_until

MIN = 60_000
REPO = Path(__file__).resolve().parents[3]


class MicroBatches:
    def __init__(
        self, bootstrap: str, redis_url: str, topic: str, dlq_topic: str, group: str, data_dir: Path
    ) -> None:
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
                        "timestamp": pa.array([m.timestamp()[1] * 1000 for m in msgs], pa.int64()).cast(
                            pa.timestamp("us", tz="UTC")
                        ),
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
        return (
            0
            if self.job.writer is None or self.job.writer.last_batch is None
            else self.job.writer.last_batch + 1
        )

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


class FlinkReferenceJob:
    """`python -m pipelines.flink.job` (its own generated source, a local mini-cluster with REST) in its own
    process group, so its JVM and Python workers go with it (as tests/integration/flink does)."""

    STARTUP = 180.0  # a cold JVM plus Python workers on two busy cores

    def __init__(self, port: int, log: Path, name: str) -> None:
        self.port, self.log, self.name = port, log, name
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FlinkReferenceJob:
        cmd = [
            sys.executable,
            "-m",
            "pipelines.flink.job",
            "--rest-port",
            str(self.port),
            "--job-name",
            self.name,
            "--checkpoint-interval",
            "1",
            "--rate",
            "50",
            "--late-ratio",
            "0.05",
        ]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_until(self._running, self.STARTUP, f"Flink job {self.name} RUNNING (log: {self.log})", 0.5)
        return self

    def _running(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"the Flink job exited with {self.proc.returncode}; see {self.log}")
        try:
            jobs = httpx.get(f"{self.rest_url}/jobs/overview", timeout=1).json()["jobs"]
        except (httpx.HTTPError, ValueError, KeyError):
            return False
        return any(j["name"] == self.name and j["state"] == "RUNNING" for j in jobs)

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self.proc = None
