"""Throughput and end-to-end latency of the Spark job on this machine.

    PYSPARK_PYTHON=$PWD/.venv/bin/python .venv/bin/python bench/pipeline_throughput.py --events 200000
    PYSPARK_PYTHON=$PWD/.venv/bin/python .venv/bin/python bench/pipeline_throughput.py --rate 5000 --duration 60

backlog mode (default): pre-produce N events on a fresh embedded broker, start the job, and time it from
the first batch's start to the last batch's end (Spark's JVM start-up is excluded): sustained events/s.
rate mode: produce at a fixed rate (from a separate process) while the job runs; latency = visible_at - event_time from the
`watchtower:e2e` stream (the percentiles are over the pooled per-batch samples).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson  # noqa: E402
import redis  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from pipelines.events import encode, format_event_time, new_event  # noqa: E402
from pipelines.spark.delta_sinks import DeltaSinks  # noqa: E402
from pipelines.spark.job import SparkJob, delta_root, local_session  # noqa: E402
from watchtower.config.models import PipelineConfig  # noqa: E402
from watchtower.stack.broker import EmbeddedBroker  # noqa: E402
from watchtower.stack.redis_server import LocalRedis  # noqa: E402


class Payloads:
    """Contract-conforming order events at a few microseconds each (new_event + encode cost ~30 us: two
    uuid4 and a strftime per event, which at 20k/s would take most of a core from the job under test).
    Ids are a random run prefix plus a counter; the event time string is rebuilt once per second."""

    def __init__(self, users: int):
        self.users = users
        self.run = uuid.uuid4().hex[:16]
        self._second, self._prefix = -1, b""

    def value(self, i: int, now_ms: int) -> bytes:
        if now_ms // 1000 != self._second:
            self._second = now_ms // 1000
            self._prefix = format_event_time(self._second * 1000)[:-5].encode()  # ...T15:44:31
        return (
            b'{"event_id":"%s%016x","order_id":"o-%x","user_id":"u%d","amount":10.0,"event_type":"paid","event_time":"%s.%03dZ"}'
            % (self.run.encode(), i, i, i % self.users, self._prefix, now_ms % 1000)
        )


def produce(
    producer: Producer, topic: str, n: int, partitions: int, users: int, rate: float | None = None
) -> None:
    start = time.monotonic()
    payloads = Payloads(users)
    for i in range(n):
        if rate and i % 100 == 0:
            ahead = i / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
        while True:
            try:
                producer.produce(
                    topic,
                    payloads.value(i, int(time.time() * 1000)),
                    key=b"u%d" % (i % users),
                    partition=i % partitions,
                )
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(60)


def produce_process(bootstrap: str, n: int, partitions: int, users: int, rate: float) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 500_000,
        }
    )
    produce(producer, "orders", n, partitions, users, rate=rate)


def markers(bootstrap: str, topic: str, partitions: int) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "batch.num.messages": 1, "linger.ms": 0})
    for part in range(partitions):
        p.produce(topic, encode(new_event("marker", 0, "marker", int(time.time() * 1000))), partition=part)
        p.flush(30)


def caught_up(bootstrap: str, group: str, topic: str, partitions: int) -> bool:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = [c.get_watermark_offsets(tp, timeout=10)[1] for tp in tps]
        got = [tp.offset for tp in c.committed(tps, timeout=10)]
        return all(g >= e for g, e in zip(got, ends, strict=True))
    finally:
        c.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument(
        "--rate", type=float, default=None, help="events/s produced while the job runs (rate mode)"
    )
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of production in rate mode")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--max-offsets", type=int, default=100_000)
    ap.add_argument("--trigger", type=float, default=0.5)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="wt-bench-"))
    broker, server = (
        EmbeddedBroker(die_with_parent=True).start(),
        LocalRedis(workdir=work / "redis", die_with_parent=True).start(),
    )
    spark = None
    try:
        bs = broker.bootstrap_servers
        admin = AdminClient({"bootstrap.servers": bs})
        for f in admin.create_topics(
            [NewTopic("orders", args.partitions, 1), NewTopic("orders.dlq", 1, 1)]
        ).values():
            f.result(30)
        pipeline = PipelineConfig(
            data_dir=work / "data",
            max_offsets_per_trigger=args.max_offsets,
            trigger_interval=args.trigger,
            partitions=args.partitions,
        )
        producer = Producer(
            {
                "bootstrap.servers": bs,
                "linger.ms": 20,
                "batch.num.messages": 10_000,
                "queue.buffering.max.messages": 500_000,
            }
        )
        n = int(args.rate * args.duration) if args.rate else args.events
        if not args.rate:
            t = time.monotonic()
            produce(producer, "orders", n, args.partitions, args.users)
            markers(bs, "orders", args.partitions)
            print(f"pre-produced {n} events in {time.monotonic() - t:.1f}s", file=sys.stderr)

        spark = local_session(pipeline.shuffle_partitions)
        job = SparkJob(pipeline, {"bootstrap.servers": bs}, server.url)
        stop = threading.Event()
        runner = threading.Thread(target=job.run, args=(spark, stop), daemon=True)
        runner.start()
        if args.rate:
            while job.writer is None or not job.writer.reports:  # wait for Spark to be up before timing
                if not runner.is_alive():
                    raise SystemExit("the job died")
                produce(producer, "orders", 1, args.partitions, args.users)
                time.sleep(0.5)
            # The producer runs in its own process: in this one it would take the GIL from the driver's
            # foreachBatch (at 50k/s building and producing events is most of a core).
            t = time.monotonic()
            feeder = multiprocessing.get_context("spawn").Process(
                target=produce_process, args=(bs, n, args.partitions, args.users, args.rate)
            )
            feeder.start()
            feeder.join()
            produced_s = time.monotonic() - t
            markers(bs, "orders", args.partitions)
        produce_end = time.monotonic()
        deadline = time.monotonic() + 1800
        while not caught_up(bs, pipeline.consumer_group, "orders", args.partitions):
            if not runner.is_alive() or time.monotonic() > deadline:
                raise SystemExit("the job died or never caught up")
            time.sleep(1)
        drained_s = time.monotonic() - produce_end
        stop.set()
        runner.join(120)

        rows = (
            DeltaSinks(delta_root(pipeline), "bench").open().table("batches").to_pyarrow_table().to_pylist()
        )
        rows = [r for r in rows if r["input_rows"] > 0]
        total = sum(r["input_rows"] for r in rows)
        rc = redis.Redis.from_url(server.url)
        # Wall time from the first data trigger's start to the last one's end, from Spark's own progress.
        spans = [
            (
                datetime.fromisoformat(f[b"timestamp"].decode().replace("Z", "+00:00")).timestamp(),
                float(f[b"trigger_execution_ms"]) / 1000,
            )
            for _, f in rc.xrange(pipeline.progress_stream)
            if int(f[b"input_rows"]) > 0
        ]
        first = min(s for s, _ in spans)
        last = max(s + d for s, d in spans)
        samples, p95s = [], []
        for _, f in rc.xrange("watchtower:e2e"):
            samples += orjson.loads(f[b"sample"])
            p95s.append(float(f[b"p95_ms"]))
        progress = [f for _, f in rc.xrange(pipeline.progress_stream) if int(f[b"input_rows"]) > 0]
        trig = [float(f[b"trigger_execution_ms"]) for f in progress]
        add = [float(f[b"add_batch_ms"]) for f in progress]
        handle = [r["total_ms"] for r in rows]
        report = {
            "mode": "rate" if args.rate else "backlog",
            "events": total,
            "batches": len(rows),
            "seconds": round(last - first, 2),
            "events_per_s": round(total / max(last - first, 1e-9)),
            "latency_p50_ms": round(percentile(samples, 0.5)),
            "latency_p95_ms": round(percentile(samples, 0.95)),
            "batch_p95_ms_max": round(max(p95s, default=0)),
            "mean_batch_rows": round(total / len(rows)),
            "mean_trigger_ms": round(sum(trig) / max(len(trig), 1)),
            "mean_add_batch_ms": round(sum(add) / max(len(add), 1)),
            # Spark's own per-trigger phases (durationMs), to see the fixed cost outside foreachBatch.
            "mean_phase_ms": {
                k: round(sum(float(f[k.encode()]) for f in progress) / max(len(progress), 1))
                for k in (
                    "latest_offset_ms",
                    "query_planning_ms",
                    "wal_commit_ms",
                    "get_batch_ms",
                    "commit_offsets_ms",
                )
            },
            "mean_handle_ms": round(sum(handle) / len(handle)),
            "mean_handle_split_ms": {
                k: round(sum(r[k] for r in rows) / len(rows))
                for k in ("process_ms", "delta_ms", "kafka_ms", "redis_ms")
            },
        }
        # Flat across the run, or growing with the tables? Mean handle time and rows per third of the batches.
        ordered = sorted(rows, key=lambda r: r["batch_id"])
        thirds = [ordered[i * len(ordered) // 3 : (i + 1) * len(ordered) // 3] for i in range(3)]
        report["handle_ms_per_1k_rows_by_third"] = [
            round(1000 * sum(r["total_ms"] for r in t) / max(1, sum(r["input_rows"] for r in t)), 1)
            for t in thirds
        ]
        by_batch = {r["batch_id"]: r for r in rows}
        report["per_batch"] = [
            [
                int(f[b"batch_id"]),
                int(f[b"input_rows"]),
                round(float(f[b"trigger_execution_ms"])),
                round(by_batch.get(int(f[b"batch_id"]), {}).get("total_ms", 0)),
            ]
            for f in progress
        ][:40]  # [batch_id, rows, trigger ms, handle ms]
        if args.rate:
            report["target_rate"] = args.rate
            report["produced_per_s"] = round(n / produced_s)
            # kept up: the job finished within a few seconds of the producer
            report["drain_after_produce_s"] = round(drained_s, 1)
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    finally:
        if spark is not None:
            spark.stop()
        broker.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
