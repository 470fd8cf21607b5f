"""The reference Flink job: per-user 5 s event-time windows over order events, with checkpoints.

    python -m pipelines.flink.job --rest-port 8081                       # built-in generated events
    python -m pipelines.flink.job --rest-port 8081 --kafka-jar JAR \\
        --bootstrap-servers 127.0.0.1:9092 --topic orders                  # read the pipeline's topic

It runs a local mini-cluster in this process's JVM, so the JobManager REST API (what watchtower's Flink
collector reads) answers at 127.0.0.1:<rest-port> for as long as the job runs.

Topology: source -> parse + bounded-out-of-orderness watermarks -> key by user_id -> 5 s tumbling
event-time windows (count, amount) with allowed lateness -> discard (or print). Events later than the
allowed lateness go to a side output and are counted (user metric `lateEvents`). An event stamped more
than `--max-future-skew` ahead of the wall clock is dropped before the watermark assigner and counted
(user metric `futureEvents`, also in `skippedEvents`, and its rate `futureEventsPerSecond` over the last
minute): it must never move the watermark.

Without a Kafka connector jar the source is Flink's DataGen table connector, which paces ticks at
`--rate` per second; each tick becomes one record from the shared generator (`pipelines.generator`), so
the events follow the topic's contract (`pipelines.events`), a `--late-ratio` share is stamped
`--late-by` seconds in the past (exercising the late side output), a `--future-ratio` share a year ahead
(exercising the skew guard) and a `--malformed-ratio` share breaks the contract (skipped and counted, user
metric `skippedEvents`).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pyflink.common import Configuration, Duration, Types, WatermarkStrategy
from pyflink.common.time import Time
from pyflink.common.watermark_strategy import TimestampAssigner
from pyflink.datastream import CheckpointingMode, OutputTag, StreamExecutionEnvironment
from pyflink.datastream.connectors.base import Sink
from pyflink.datastream.functions import FlatMapFunction, MapFunction, ProcessWindowFunction, RuntimeContext
from pyflink.datastream.window import TumblingEventTimeWindows
from pyflink.java_gateway import get_gateway
from pyflink.table import StreamTableEnvironment

from pipelines.events import (
    CONTROL_TYPES,
    DEFAULT_MAX_FUTURE_SKEW_MS,
    FUTURE_EVENT_TIME,
    format_event_time,
    is_future,
    validate,
)
from pipelines.generator import EventFactory


def parse_event(raw: str) -> tuple[str, float, int] | None:
    """(user_id, amount, event_time epoch ms) of a business event; None for a malformed record or a
    control event (canary, marker), which never enters an aggregate."""
    verdict = validate(raw.encode())
    if not verdict.ok or verdict.event["event_type"] in CONTROL_TYPES:
        return None
    return verdict.event["user_id"], float(verdict.event["amount"]), verdict.event_time_ms


def classify(raw: str, now_ms: int, max_skew_ms: int) -> tuple[tuple[str, float, int] | None, str | None]:
    """(event, None) for a business event within the skew bound; (None, reason) for a skipped record:
    `future_event_time`, `control` or the contract's failure reason."""
    verdict = validate(raw.encode())
    if not verdict.ok:
        return None, verdict.reason
    if verdict.event["event_type"] in CONTROL_TYPES:
        return None, "control"
    if is_future(verdict.event_time_ms, None, now_ms, max_skew_ms):
        return None, FUTURE_EVENT_TIME
    return (verdict.event["user_id"], float(verdict.event["amount"]), verdict.event_time_ms), None


# The functions below run in Flink's Python workers; they live at module level so they are pickled by
# reference (the workers import this module) rather than by value.


class ToEvent(MapFunction):
    """A DataGen tick -> one order record from the shared generator's factory, stamped with wall time
    (so its fault mix, late events included, is the one `watchtower pipeline generate` produces)."""

    def __init__(
        self, users: int, late_ratio: float, late_by: float, malformed_ratio: float, future_ratio: float = 0.0
    ):
        self.users, self.late_ratio, self.late_by = users, late_ratio, late_by
        self.malformed_ratio, self.future_ratio = malformed_ratio, future_ratio

    def open(self, ctx: RuntimeContext) -> None:
        self.factory = EventFactory(
            random.Random(ctx.get_index_of_this_subtask()),
            users=self.users,
            late_ratio=self.late_ratio,
            late_by=self.late_by,
            malformed_ratio=self.malformed_ratio,
            future_ratio=self.future_ratio,
        )

    def map(self, tick: Any) -> str:
        return self.factory.batch(1, int(time.time() * 1000))[0].value.decode()


class Parse(FlatMapFunction):
    def __init__(self, max_future_skew_ms: int = DEFAULT_MAX_FUTURE_SKEW_MS):
        self.max_future_skew_ms = max_future_skew_ms

    def open(self, ctx: RuntimeContext) -> None:
        group = ctx.get_metrics_group()
        self.skipped = group.counter("skippedEvents")  # malformed, control or future
        self.future = group.counter("futureEvents")
        # Flink computes the rate (what the future-events rule reads); 60 s is Flink's default span.
        self.future_rate = group.meter("futureEventsPerSecond", time_span_in_seconds=60)

    def flat_map(self, value: str) -> Iterable[tuple[str, float, int]]:
        parsed, reason = classify(value, int(time.time() * 1000), self.max_future_skew_ms)
        if parsed is None:
            self.skipped.inc()
            if reason == FUTURE_EVENT_TIME:
                self.future.inc()
                self.future_rate.mark_event()
        else:
            yield parsed


class EventTime(TimestampAssigner):
    def extract_timestamp(self, value: tuple[str, float, int], record_timestamp: int) -> int:
        return value[2]


class WindowTotals(ProcessWindowFunction):
    def process(self, key: str, context: ProcessWindowFunction.Context, elements: Iterable) -> Iterable[str]:
        count, amount = 0, 0.0
        for _, a, _ in elements:
            count += 1
            amount += a
        yield json.dumps(
            {
                "user_id": key,
                "window_end": format_event_time(context.window().end),
                "count": count,
                "amount": round(amount, 2),
            }
        )


class CountLate(MapFunction):
    def open(self, ctx: RuntimeContext) -> None:
        self.late = ctx.get_metrics_group().counter("lateEvents")

    def map(self, value: tuple[str, float, int]) -> str:
        self.late.inc()
        return value[0]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pipelines.flink.job", description=__doc__.splitlines()[0])
    p.add_argument("--rest-port", type=int, default=8081, help="JobManager REST port on 127.0.0.1")
    p.add_argument("--job-name", default="watchtower-flink-reference")
    p.add_argument("--kafka-jar", default=None, help="flink-sql-connector-kafka jar; unset: generated events")
    p.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    p.add_argument("--topic", default="orders")
    p.add_argument("--group-id", default="watchtower-flink")
    p.add_argument("--checkpoint-interval", type=float, default=2.0, help="seconds")
    p.add_argument("--checkpoint-dir", default=None, help="file:// URI; unset: JobManager memory")
    p.add_argument("--window", type=float, default=5.0, help="tumbling window length, seconds")
    p.add_argument("--out-of-orderness", type=float, default=2.0, help="watermark bound, seconds")
    p.add_argument("--allowed-lateness", type=float, default=3.0, help="seconds")
    p.add_argument(
        "--max-future-skew",
        type=float,
        default=DEFAULT_MAX_FUTURE_SKEW_MS / 1000,
        help="seconds; a later-stamped event is dropped (futureEvents) before the watermark",
    )
    p.add_argument("--rate", type=int, default=50, help="generated events per second")
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--late-ratio", type=float, default=0.02)
    p.add_argument("--late-by", type=float, default=30.0, help="seconds a late generated event lags")
    p.add_argument("--malformed-ratio", type=float, default=0.01)
    p.add_argument(
        "--future-ratio", type=float, default=0.0, help="share of generated events stamped a year ahead"
    )
    p.add_argument("--parallelism", type=int, default=1)
    p.add_argument(
        "--scheduler",
        choices=["default", "adaptive"],
        default="default",
        help="adaptive: the job can be rescaled in place (PUT /jobs/:jid/resource-requirements)",
    )
    p.add_argument("--slots", type=int, default=None, help="task slots of the mini-cluster's task manager")
    p.add_argument("--from-savepoint", default=None, help="start from this savepoint (a rescale by restart)")
    p.add_argument("--print", action="store_true", help="print window results instead of discarding them")
    return p.parse_args(argv)


def flink_configuration(args: argparse.Namespace) -> Any:
    conf = Configuration()
    conf.set_string("rest.port", str(args.rest_port))
    conf.set_string("rest.bind-port", str(args.rest_port))
    conf.set_string("rest.address", "127.0.0.1")
    conf.set_string("rest.bind-address", "127.0.0.1")
    # Python workers must run this venv's interpreter, or every task fails to start and restarts forever.
    conf.set_string("python.executable", sys.executable)
    conf.set_string("python.client.executable", sys.executable)
    # Small, frequent bundles: a checkpoint barrier waits for the open bundle to flush.
    conf.set_string("python.fn-execution.bundle.size", "500")
    conf.set_string("python.fn-execution.bundle.time", "200")
    conf.set_string("restart-strategy.type", "fixed-delay")
    conf.set_string("restart-strategy.fixed-delay.attempts", "2147483647")
    conf.set_string("restart-strategy.fixed-delay.delay", "2 s")
    if args.checkpoint_dir:
        conf.set_string("execution.checkpointing.dir", args.checkpoint_dir)
    if args.scheduler == "adaptive":
        conf.set_string("jobmanager.scheduler", "adaptive")
    if args.slots:  # spare slots are what an in-place rescale up grows into
        conf.set_string("taskmanager.numberOfTaskSlots", str(args.slots))
    if args.from_savepoint:
        conf.set_string("execution.savepoint.path", args.from_savepoint)
    return conf


def build(args: argparse.Namespace) -> Any:
    """The job graph on a fresh environment; returns the environment, ready to `execute`."""
    env = StreamExecutionEnvironment.get_execution_environment(flink_configuration(args))
    env.set_parallelism(args.parallelism)
    env.enable_checkpointing(int(args.checkpoint_interval * 1000), CheckpointingMode.EXACTLY_ONCE)

    raw = _kafka_source(env, args) if args.kafka_jar else _generated_source(env, args)

    event_type = Types.TUPLE([Types.STRING(), Types.DOUBLE(), Types.LONG()])
    # Idleness: a parse subtask fed only by empty Kafka partitions must not hold every window back.
    # Order matters: PyFlink's with_idleness builds a new strategy that drops a Python timestamp
    # assigner set before it (every record then has no timestamp and the window operator fails).
    watermarks = (
        WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_millis(int(args.out_of_orderness * 1000)))
        .with_idleness(Duration.of_seconds(10))
        .with_timestamp_assigner(EventTime())
    )
    events = (
        raw.flat_map(Parse(int(args.max_future_skew * 1000)), output_type=event_type)
        .name("parse")
        .uid("parse")
        .assign_timestamps_and_watermarks(watermarks)
        .name("watermarks")
        .uid("watermarks")
    )
    # Untyped (pickled) on purpose: a typed tuple tag fails to pickle once its field types touched the JVM.
    late_tag = OutputTag("late-events")
    totals = (
        events.key_by(lambda e: e[0], key_type=Types.STRING())
        .window(TumblingEventTimeWindows.of(Time.milliseconds(int(args.window * 1000))))
        .allowed_lateness(int(args.allowed_lateness * 1000))
        .side_output_late_data(late_tag)
        .process(WindowTotals(), output_type=Types.STRING())
        .name("user-windows")
        .uid("user-windows")
    )
    late = (
        totals.get_side_output(late_tag)
        .map(CountLate(), output_type=Types.STRING())
        .name("late-events")
        .uid("late-events")
    )

    discarding = get_gateway().jvm.org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink
    if args.print:
        totals.print().name("print-windows")
    else:
        totals.sink_to(Sink(discarding())).name("discard-windows").uid("discard-windows")
    late.sink_to(Sink(discarding())).name("discard-late").uid("discard-late")
    return env


def _generated_source(env: Any, args: argparse.Namespace) -> Any:
    """DataGen ticks at `--rate`/s (Flink paces them), each turned into one JSON order event."""
    t_env = StreamTableEnvironment.create(env)
    t_env.execute_sql(
        "CREATE TEMPORARY TABLE ticks (n BIGINT) WITH ("
        f"'connector' = 'datagen', 'rows-per-second' = '{int(args.rate)}', 'fields.n.kind' = 'random')"
    )
    ticks = t_env.to_data_stream(t_env.from_path("ticks"))
    return (
        ticks.map(
            ToEvent(args.users, args.late_ratio, args.late_by, args.malformed_ratio, args.future_ratio),
            output_type=Types.STRING(),
        )
        .name("generate-events")
        .uid("generate-events")
    )


def _kafka_source(env: Any, args: argparse.Namespace) -> Any:
    """The pipeline topic through the user-supplied Kafka connector jar; watermarks come after parsing."""
    from pyflink.common.serialization import SimpleStringSchema
    from pyflink.datastream.connectors.kafka import KafkaOffsetsInitializer, KafkaSource

    jar = Path(args.kafka_jar).resolve()
    if not jar.is_file():
        raise SystemExit(f"--kafka-jar {jar} does not exist: pass the flink-sql-connector-kafka jar")
    env.add_jars(jar.as_uri())
    try:
        builder = KafkaSource.builder()
    except TypeError as exc:  # PyFlink's way of saying the Java class is not on the classpath
        raise SystemExit(
            f"--kafka-jar {jar} has no org.apache.flink.connector.kafka.source.KafkaSource: "
            "pass the flink-sql-connector-kafka jar built for this Flink version"
        ) from exc
    source = (
        builder.set_bootstrap_servers(args.bootstrap_servers)
        .set_topics(args.topic)
        .set_group_id(args.group_id)
        .set_starting_offsets(KafkaOffsetsInitializer.latest())
        .set_value_only_deserializer(SimpleStringSchema())
        .build()
    )
    return env.from_source(source, WatermarkStrategy.no_watermarks(), "kafka").uid("kafka")


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    env = build(args)
    print(f"flink job {args.job_name!r}: REST API at http://127.0.0.1:{args.rest_port}", flush=True)
    env.execute(args.job_name)


if __name__ == "__main__":
    main()
