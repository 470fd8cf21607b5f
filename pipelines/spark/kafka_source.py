"""A Kafka source for Spark Structured Streaming, written on Spark 4's Python Data Source API.

No Maven here, so no spark-sql-kafka jar: this reads Kafka through confluent-kafka instead.

    spark.readStream.format("watchtower_kafka")
        .option("kafka.bootstrap.servers", "host:9092")   # any `kafka.<librdkafka key>` passes through
        .option("subscribe", "orders")                     # one topic
        .option("startingOffsets", "earliest")             # or latest
        .option("maxOffsetsPerTrigger", 200000)
        .option("groupId", "watchtower-spark")             # committed on every Spark commit, for lag monitors
        .option("decoder", "pkg.module:function")          # optional: f(RecordBatch, options) -> RecordBatch,
                                                           # run on every chunk in the executors
        .option("output", "arrow")                         # optional: one row per chunk, see below
        .option("tasks", 2)                                # optional: Spark tasks per micro-batch (default:
                                                           # one per Kafka partition), see plan_tasks

Offsets in the checkpoint look like Spark's own Kafka source: {"orders": {"0": 42, "1": 17}} (next offset
to read per partition). Each trigger asks for every partition's latest offset in one ListOffsets call.
Each Spark task reads its offset ranges ([start, end) of a Kafka partition each) with one consumer assigned
to all of them at once, and yields Arrow record batches: topic, partition, offset, timestamp, key, value.

`output=arrow` ships each chunk (up to ROWS_PER_ARROW_BATCH records, after the decoder) as one row
`partition, offset, rows, arrow` whose `arrow` value is the chunk as an Arrow IPC stream; `unpack_arrow`
turns collected rows back into one table. Spark then moves a few large binary values instead of
converting every record Arrow -> UnsafeRow -> Arrow on the way to the driver, and the decoder's typed
columns arrive in the driver as they left the executor. Use it when the consumer of the DataFrame is
foreachBatch collecting to Arrow anyway; with `output=rows` (default) the rows are ordinary Spark rows.

The driver-side methods (initialOffset, latestOffset, partitions, commit) run in one long-lived Python
process per query, so the admin client and the committing consumer are kept between triggers.
"""

from __future__ import annotations

import importlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import (
    ReadAllAvailable,
    ReadLimit,
    ReadMaxRows,
    SupportsTriggerAvailableNow,
)

log = logging.getLogger(__name__)

FORMAT = "watchtower_kafka"
SCHEMA = "topic string, partition int, offset long, timestamp timestamp, key binary, value binary"
ARROW_SCHEMA = pa.schema(
    [
        ("topic", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("key", pa.binary()),
        ("value", pa.binary()),
    ]
)
ROWS_PER_ARROW_BATCH = 20_000
PACKED_SCHEMA = "partition int, offset long, rows long, arrow binary"
PACKED_ARROW_SCHEMA = pa.schema(
    [("partition", pa.int32()), ("offset", pa.int64()), ("rows", pa.int64()), ("arrow", pa.binary())]
)
Decoder = Callable[[pa.RecordBatch, Mapping[str, str]], pa.RecordBatch]


def client_conf(options: Mapping[str, str]) -> dict[str, str]:
    """The librdkafka settings: every `kafka.<key>` option with the prefix removed."""
    return {k[len("kafka.") :]: v for k, v in options.items() if k.startswith("kafka.")}


def prorate(start: Mapping[int, int], latest: Mapping[int, int], max_rows: int) -> dict[int, int]:
    """End offsets that read at most `max_rows` in all, shared in proportion to each partition's backlog.

    Pure; every partition with a backlog advances by at least one record, so a trigger never stalls.
    """
    lag = {p: max(0, latest[p] - start.get(p, 0)) for p in latest}
    total = sum(lag.values())
    if total <= max_rows:
        return {p: max(latest[p], start.get(p, 0)) for p in latest}
    end = {}
    for p in latest:
        share = (max_rows * lag[p]) // total if total else 0
        if lag[p] > 0:
            share = max(1, share)
        end[p] = start.get(p, 0) + min(lag[p], share)
    return end


def load_decoder(path: str) -> Decoder:
    """`pkg.module:function` -> the function (imported in the worker that reads)."""
    module, _, name = path.partition(":")
    if not module or not name:
        raise ValueError(f"decoder must look like pkg.module:function, got {path!r}")
    return getattr(importlib.import_module(module), name)


def pack(batch: pa.RecordBatch, partition: int) -> pa.RecordBatch:
    """One chunk as a single row holding its Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    first = batch.column(batch.schema.get_field_index("offset"))[0].as_py() if batch.num_rows else -1
    return pa.RecordBatch.from_arrays(
        [
            pa.array([partition], pa.int32()),
            pa.array([first], pa.int64()),
            pa.array([batch.num_rows], pa.int64()),
            pa.array([sink.getvalue().to_pybytes()], pa.binary()),
        ],
        schema=PACKED_ARROW_SCHEMA,
    )


def unpack_arrow(batches: list[pa.RecordBatch]) -> pa.Table | None:
    """The chunks inside collected `output=arrow` rows as one table (None when there are none), in
    (partition, offset) order whatever order the tasks produced them in, so a replay sees the same rows."""
    packed = sorted(
        (
            (p, o, buf)
            for b in batches
            for p, o, buf in zip(
                *(b.column(c).to_pylist() for c in ("partition", "offset", "arrow")), strict=True
            )
        ),
        key=lambda t: (t[0], t[1]),
    )
    tables = [pa.ipc.open_stream(buf).read_all() for _, _, buf in packed]
    return pa.concat_tables(tables) if tables else None


class KafkaPartition(InputPartition):
    def __init__(
        self, topic: str, partition: int, start: int, end: int, conf: dict[str, str], timeout_s: float
    ):
        super().__init__((topic, partition, start, end))
        self.topic, self.partition, self.start, self.end = topic, partition, start, end
        self.conf, self.timeout_s = conf, timeout_s


class KafkaTask(InputPartition):
    """What one Spark task reads: one or more ranges, one after another."""

    def __init__(self, ranges: list[KafkaPartition]):
        super().__init__(tuple((r.partition, r.start, r.end) for r in ranges))
        self.ranges = ranges


Range = tuple[int, int, int]  # partition, start, end


def plan_tasks(ranges: list[Range], tasks: int | None) -> list[list[Range]]:
    """Share offset ranges between `tasks` Spark tasks of about equal size. Pure and deterministic.

    None or 0: one task per range (one per Kafka partition). Otherwise a range longer than an equal share
    is cut into pieces of at most that share (a hot partition is read by several tasks), and the pieces
    go, largest first, to the least loaded task. Fewer, fuller tasks save Spark's fixed cost per task
    (a Python worker round trip, a consumer and its first fetch), which dominates small micro-batches.
    """
    ranges = [r for r in ranges if r[2] > r[1]]
    if not tasks or not ranges:
        return [[r] for r in ranges]
    total = sum(end - start for _, start, end in ranges)
    share = max(1, -(-total // tasks))
    pieces = []
    for p, start, end in ranges:
        for s in range(start, end, share):
            pieces.append((p, s, min(end, s + share)))
    bins: list[list[Range]] = [[] for _ in range(min(tasks, len(pieces)))]
    load = [0] * len(bins)
    for piece in sorted(pieces, key=lambda r: (-(r[2] - r[1]), r[0], r[1])):
        i = load.index(min(load))
        bins[i].append(piece)
        load[i] += piece[2] - piece[1]
    return [sorted(b) for b in bins]


def _to_batch(
    topic: str, partition: int, offsets: list, stamps: list, keys: list, values: list
) -> pa.RecordBatch:
    n = len(offsets)
    return pa.RecordBatch.from_arrays(
        [
            pa.array([topic] * n, pa.string()),
            pa.array([partition] * n, pa.int32()),
            pa.array(offsets, pa.int64()),
            pa.array(stamps, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            pa.array(keys, pa.binary()),
            pa.array(values, pa.binary()),
        ],
        schema=ARROW_SCHEMA,
    )


def _passes(ranges: list[KafkaPartition]) -> list[list[KafkaPartition]]:
    """Groups to read with one consumer each: at most one range per partition in a group (a task may
    hold two pieces of one hot partition; those are read one after the other)."""
    groups: list[list[KafkaPartition]] = []
    for r in ranges:
        for g in groups:
            if all(x.partition != r.partition for x in g):
                g.append(r)
                break
        else:
            groups.append([r])
    return groups


def read_ranges(ranges: list[KafkaPartition]) -> Iterator[pa.RecordBatch]:
    """Yield the records of every range as Arrow batches (each batch from one partition).

    One consumer per pass, assigned to every range's partition at once, so the partitions are fetched
    together instead of paying a consumer's start-up (~15-35 ms to the first record) once per range.
    Offsets may have gaps (compaction, transaction markers), so a range ends when the consumer's
    position reaches its `end`, not when a record with offset end-1 arrives. No progress for `timeout_s`
    raises: the range was promised by the broker, so silently stopping would lose data.
    """
    for group in _passes([r for r in ranges if r.end > r.start]):
        yield from _read_pass(group)


class _Buffer:
    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.stamps: list[int] = []
        self.keys: list[bytes | None] = []
        self.values: list[bytes | None] = []

    def take(self, r: KafkaPartition) -> pa.RecordBatch:
        batch = _to_batch(r.topic, r.partition, self.offsets, self.stamps, self.keys, self.values)
        self.__init__()
        return batch


def _read_pass(group: list[KafkaPartition]) -> Iterator[pa.RecordBatch]:
    from confluent_kafka import KafkaError, TopicPartition

    from watchtower.kafka.clients import assigned_consumer

    first = group[0]
    group_id = first.conf.get("group.id", f"watchtower-spark-reader-{uuid.uuid4().hex[:8]}")
    conf = {
        **{k: v for k, v in first.conf.items() if k != "group.id"},
        "enable.partition.eof": True,
        "auto.offset.reset": "error",
        "fetch.max.bytes": int(first.conf.get("fetch.max.bytes", 64 * 1024 * 1024)),
        "max.partition.fetch.bytes": int(first.conf.get("max.partition.fetch.bytes", 16 * 1024 * 1024)),
    }
    by_partition = {r.partition: r for r in group}
    position = {r.partition: r.start for r in group}
    buffers = {r.partition: _Buffer() for r in group}
    open_ = set(by_partition)
    consumer = assigned_consumer(conf, group_id, "spark-reader")
    consumer.assign([TopicPartition(r.topic, r.partition, r.start) for r in group])
    last_progress = time.monotonic()
    try:
        while open_:
            # consume() waits for all num_messages or the timeout: ask for no more than the ranges still
            # hold and wait briefly, or every call idles out its timeout on a short fetch.
            left = sum(by_partition[p].end - position[p] for p in open_)
            msgs = consumer.consume(num_messages=max(1, min(10_000, left)), timeout=0.05)
            progressed = False
            for m in msgs:
                part = m.partition()
                if part not in open_:
                    continue  # prefetched past its end, or an EOF event of a finished partition
                r = by_partition[part]
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        # The EOF event carries the log end: a gap up to it (markers) is done too.
                        if m.offset() is not None and m.offset() > position[part]:
                            position[part] = min(m.offset(), r.end)
                            progressed = True
                        continue
                    raise RuntimeError(f"kafka read {r.topic}[{part}] failed: {err}")
                off = m.offset()
                if off >= r.end:
                    position[part] = r.end
                else:
                    b = buffers[part]
                    b.offsets.append(off)
                    b.stamps.append(m.timestamp()[1] * 1000)
                    b.keys.append(m.key())
                    b.values.append(m.value())
                    position[part] = off + 1
                    if len(b.offsets) >= ROWS_PER_ARROW_BATCH:
                        yield b.take(r)
                progressed = True
            still = [p for p in open_ if position[p] < by_partition[p].end]
            if still:
                # Gaps: transaction markers and compacted offsets never arrive as messages.
                for tp in consumer.position([TopicPartition(first.topic, p) for p in still]):
                    if tp.offset > position[tp.partition]:
                        position[tp.partition] = min(tp.offset, by_partition[tp.partition].end)
                        progressed = True
            for p in [p for p in open_ if position[p] >= by_partition[p].end]:
                open_.discard(p)
                if buffers[p].offsets:
                    yield buffers[p].take(by_partition[p])
            if progressed:
                last_progress = time.monotonic()
            elif open_ and time.monotonic() - last_progress > first.timeout_s:
                p = min(open_)
                raise TimeoutError(
                    f"kafka read {first.topic}[{p}] stuck at offset {position[p]} before end {by_partition[p].end} "
                    f"for {first.timeout_s:.0f}s"
                )
    finally:
        consumer.close()


class KafkaStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    def __init__(self, options: Mapping[str, str]):
        self.topic = options["subscribe"]
        if "," in self.topic:
            raise ValueError("watchtower_kafka subscribes to exactly one topic")
        self.conf = client_conf(options)
        if "bootstrap.servers" not in self.conf:
            raise ValueError("option kafka.bootstrap.servers is required")
        self.starting = options.get("startingOffsets", "earliest")
        if self.starting not in ("earliest", "latest"):
            raise ValueError("startingOffsets must be earliest or latest")
        self.max_rows = int(options["maxOffsetsPerTrigger"]) if options.get("maxOffsetsPerTrigger") else None
        self.group_id = options.get("groupId")
        self.timeout_s = float(options.get("fetchTimeoutMs", 60_000)) / 1000
        self.options = dict(options)
        self.decoder = options.get("decoder")
        if self.decoder:
            load_decoder(self.decoder)  # fail at start, not in the first task
        self.tasks = int(options["tasks"]) if options.get("tasks") else None
        self.output = options.get("output", "rows")
        if self.output not in ("rows", "arrow"):
            raise ValueError("output must be rows or arrow")
        if self.decoder and self.output != "arrow":
            raise ValueError("a decoder changes the columns: it needs output=arrow")
        self._admin = None
        self._committer = None
        self._last_committed: dict | None = None
        self._available_now: dict[int, int] | None = None
        self._unreachable_since: float | None = None
        self.clock: Callable[[], float] = time.monotonic

    # --- driver side ------------------------------------------------------------------------------

    def _admin_client(self):
        if self._admin is None:
            from watchtower.kafka.clients import admin_from

            self._admin = admin_from(self.conf, "spark-source")
        return self._admin

    def _list_offsets(self, which: str) -> dict[int, int]:
        """Every partition's earliest or latest offset, in one ListOffsets request."""
        from confluent_kafka import TopicPartition
        from confluent_kafka.admin import OffsetSpec

        from watchtower.kafka.clients import serve

        admin = self._admin_client()
        meta = admin.list_topics(self.topic, timeout=10).topics[self.topic]
        if meta.error is not None:
            raise RuntimeError(f"topic {self.topic}: {meta.error}")
        spec = OffsetSpec.earliest() if which == "earliest" else OffsetSpec.latest()
        request = {TopicPartition(self.topic, p): spec for p in meta.partitions}
        futures = admin.list_offsets(request, request_timeout=10)
        offsets = {tp.partition: fut.result().offset for tp, fut in futures.items()}
        serve(admin)  # its queued logs and errors: an admin client never polls otherwise
        return offsets

    def _latest_or_none(self) -> dict[int, int] | None:
        """The latest offsets, or None while the broker does not answer (a hung or restarting broker).

        Raising here fails the whole query, and a broker that hangs for ten seconds is an outage to ride
        out, not a reason to stop the job (found by the chaos scenario `broker-pause`). After `fetchTimeoutMs`
        without an answer it raises: a broker that stays away for that long is reported, not hidden."""
        from confluent_kafka import KafkaException

        try:
            latest = self._list_offsets("latest")
        except KafkaException as exc:
            now = self.clock()
            if self._unreachable_since is None:
                self._unreachable_since = now
            if now - self._unreachable_since > self.timeout_s:
                raise
            log.warning("listing offsets of %s failed (%s): no new data this trigger", self.topic, exc)
            return None
        self._unreachable_since = None
        return latest

    def initialOffset(self) -> dict:
        return {self.topic: {str(p): o for p, o in sorted(self._list_offsets(self.starting).items())}}

    def getDefaultReadLimit(self) -> ReadLimit:
        return ReadMaxRows(self.max_rows) if self.max_rows else ReadAllAvailable()

    def prepareForTriggerAvailableNow(self) -> None:
        self._available_now = self._list_offsets("latest")

    def latestOffset(self, start: dict, limit: ReadLimit) -> dict:
        begin = {int(p): o for p, o in start.get(self.topic, {}).items()}
        # Batches run one after another, so `start` (the previous batch's end) is already processed: commit
        # it here too, because Spark calls commit() for a batch only when it plans the next one.
        self.commit(start)
        if self._available_now is not None:
            latest = self._available_now
        else:
            latest = self._latest_or_none()
            if latest is None:  # the broker does not answer: an empty trigger, not a failed query
                return start
        # New partitions start at their first offset; the broker never moves a partition backwards.
        latest = {p: max(o, begin.get(p, 0)) for p, o in latest.items()}
        for p, o in begin.items():
            latest.setdefault(p, o)
        end = prorate(begin, latest, limit.max_rows) if isinstance(limit, ReadMaxRows) else latest
        return {self.topic: {str(p): o for p, o in sorted(end.items())}}

    def reportLatestOffset(self) -> dict | None:
        return None

    def partitions(self, start: dict, end: dict) -> list[KafkaTask]:
        begin = start.get(self.topic, {})
        ranges = [(int(p), int(begin.get(p, 0)), int(stop)) for p, stop in end.get(self.topic, {}).items()]
        return [
            KafkaTask(
                [
                    KafkaPartition(self.topic, p, first, stop, self.conf, self.timeout_s)
                    for p, first, stop in task
                ]
            )
            for task in plan_tasks(sorted(ranges), self.tasks)
        ]

    def read(self, partition: KafkaTask) -> Iterator[pa.RecordBatch]:
        decoder = load_decoder(self.decoder) if self.decoder else None
        for batch in read_ranges(partition.ranges):
            if self.output == "rows":
                yield batch
            else:
                part = batch.column(batch.schema.get_field_index("partition"))[0].as_py()
                yield pack(decoder(batch, self.options) if decoder else batch, part)

    def commit(self, end: dict) -> None:
        """Spark finished every offset below `end`: record it in the consumer group for lag monitors."""
        if not self.group_id:
            return
        from confluent_kafka import TopicPartition

        from watchtower.kafka.clients import consumer_from, serve

        if end == self._last_committed:
            return
        try:
            if self._committer is None:
                self._committer = consumer_from(
                    self.conf, self.group_id, "spark-committer", **{"enable.auto.commit": False}
                )
            offsets = [TopicPartition(self.topic, int(p), int(o)) for p, o in end.get(self.topic, {}).items()]
            if offsets:
                self._committer.commit(offsets=offsets, asynchronous=False)
            serve(self._committer)  # its queued logs and errors: a commit-only consumer never polls
            self._last_committed = end
        except Exception:  # the checkpoint is the source of truth; a failed group commit only delays lag
            log.warning("committing offsets to group %s failed", self.group_id, exc_info=True)

    def stop(self) -> None:
        if self._committer is not None:
            self._committer.close()
            self._committer = None


class KafkaDataSource(DataSource):
    @classmethod
    def name(cls) -> str:
        return FORMAT

    def schema(self) -> str:
        return PACKED_SCHEMA if self.options.get("output") == "arrow" else SCHEMA

    def streamReader(self, schema: Any) -> KafkaStreamReader:
        return KafkaStreamReader(self.options)
