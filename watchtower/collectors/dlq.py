"""Dead-letter growth: the DLQ topic's size, rate and header reasons, and the DLQ Delta table by reason.

Per cycle:
  topic   ListOffsets(latest) for every partition of the DLQ topic, summed -> `watchtower_dlq_messages`,
          and a growth rate over `rate_window` from that history (`growth_per_minute`, pure).
          With `read_headers`, an assign()-only consumer reads the records added since the last cycle
          (bounded by `max_records_per_cycle`) and counts their `failure_reason` header. It starts at the
          end of the partitions that exist at the first cycle (a restart does not recount history) and at
          the beginning of partitions that appear later. Reading to the end also gives the fetch
          response's high watermark, which corrects tansu's under-reporting ListOffsets (docs/stack.md).
  table   `DeltaColumnCounter` keeps the rows by `failure_reason` from the log's add actions and the
          new files only (see delta_counts.py for why that and not a scan). It reads parquet with pyarrow,
          from the `spark` extra: on a core install the default table is skipped (see `table_counter`).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from pydantic import Field

from watchtower.collectors.base import BuildContext, CollectorKind, CollectorSection
from watchtower.core.extras import MissingExtra, require_extra
from watchtower.core.types import Kind, MetricSpec, Reading, Sample, labels
from watchtower.core.units import Duration
from watchtower.kafka.clients import admin_from, assigned_consumer, serve
from watchtower.kafka.errors import StageError


class DlqConfig(CollectorSection):
    """Dead-letter growth: the DLQ topic's size and headers, and the DLQ Delta table's rows by reason."""

    topic: str | None = Field(default=None, description="default: pipeline.dlq_topic; empty string: none")
    table: str | None = Field(
        default=None, description="path of the DLQ Delta table; default <pipeline.data_dir>/delta/dlq"
    )
    # watchtower_dlq_growth_per_minute is the size's increase over this window.
    rate_window: Duration = Field(default=300.0, gt=0)
    # Read the records added since the last cycle for a breakdown by their failure_reason header.
    read_headers: bool = True
    max_records_per_cycle: int = Field(default=10_000, ge=1)


SPECS = (
    MetricSpec(
        "watchtower_dlq_messages",
        Kind.GAUGE,
        "Records ever written to the DLQ topic: its high watermarks summed over partitions",
        ("topic",),
    ),
    MetricSpec(
        "watchtower_dlq_growth_per_minute",
        Kind.GAUGE,
        "Increase of watchtower_dlq_messages over daemon.collectors.dlq.rate_window, per minute",
        ("topic",),
        unit="cpm",
    ),
    MetricSpec(
        "watchtower_dlq_topic_records_total",
        Kind.COUNTER,
        "DLQ topic records read since the daemon started, by their failure_reason header",
        ("reason", "topic"),
    ),
    MetricSpec(
        "watchtower_dlq_rows",
        Kind.GAUGE,
        "Rows of the DLQ Delta table by failure_reason",
        ("reason",),
    ),
)

NO_REASON = "(none)"


# ---- pure ---------------------------------------------------------------------------------------------


def growth_per_minute(history: Sequence[tuple[float, float]], now: float, window: float) -> float | None:
    """Increase per minute of a cumulative count over the points in [now - window, now].

    A drop is a reset (the topic was recreated): the new value counts as growth from zero, as
    Prometheus' increase() does. None with fewer than two points or no elapsed time.
    """
    pts = [(t, v) for t, v in history if now - window <= t <= now]
    if len(pts) < 2 or pts[-1][0] <= pts[0][0]:
        return None
    increase = 0.0
    for (_, a), (_, b) in zip(pts, pts[1:], strict=False):
        increase += b - a if b >= a else b
    return increase / (pts[-1][0] - pts[0][0]) * 60.0


def header_reason(headers: Sequence[tuple[str, bytes | None]] | None) -> str:
    for k, v in headers or ():
        if k == "failure_reason" and v is not None:
            return v.decode("utf-8", "replace") or NO_REASON
    return NO_REASON


# ---- I/O ----------------------------------------------------------------------------------------------


class DlqUnavailable(StageError):
    """Kafka or the Delta table could not be read; `stage` names what failed."""


def table_counter(path: str | None, configured: bool) -> tuple[Any, str | None]:
    """The DLQ table's row counter and, when there is none, why. It reads parquet with pyarrow (the `spark`
    extra): without it the default table is skipped (a core install runs no Spark job to write it) and a
    configured one is an error (MissingExtra)."""
    if not path:
        return None, None
    try:
        require_extra("spark", "pyarrow", what="counting the DLQ Delta table (daemon.collectors.dlq.table)")
    except MissingExtra as exc:
        if configured:
            raise
        return None, str(exc)
    from watchtower.collectors.delta_counts import DeltaColumnCounter

    return DeltaColumnCounter(path, "failure_reason"), None


class DlqCollector:
    """Collector `dlq`. Kafka clients and the Delta table are opened on first use; `close()` releases them."""

    specs = SPECS

    def __init__(
        self,
        config: DlqConfig,
        client_config: Mapping[str, Any],
        topic: str | None,
        table_path: str | None,
        name: str = "dlq",
    ):
        self.name = name
        self.interval = config.interval
        self.timeout = config.timeout
        self.config = config
        self.topic = topic or None
        self.table_path = table_path or None
        self._client_config = dict(client_config)
        self._admin: AdminClient | None = None
        self._consumer: Consumer | None = None
        self._assigned: set[int] = set()
        self._first_assignment = True
        self._history: deque[tuple[float, float]] = deque()
        self.header_counts: Counter[str] = Counter()
        self._counter, self.table_skipped = table_counter(
            self.table_path, configured=config.table is not None
        )

    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = admin_from(self._client_config, "dlq")
        return self._admin

    def consumer(self) -> Consumer:
        if self._consumer is None:
            self._consumer = assigned_consumer(  # never joins or commits: assign() only
                self._client_config,
                "watchtower-dlq-reader",
                "dlq-reader",
                **{"enable.partition.eof": True, "fetch.wait.max.ms": 50},
            )
        return self._consumer

    def collect(self, now: float) -> Reading:
        samples: list[Sample] = []
        detail: dict[str, Any] = {}
        if self.topic:
            samples += self._collect_topic(now, detail)
        if self._counter is not None:
            samples += self._collect_table(detail)
        elif self.table_skipped:
            detail["table"] = {"path": self.table_path, "skipped": self.table_skipped}
        serve(self._admin)  # its queued logs and errors (an admin client never polls otherwise)
        return Reading(collector=self.name, at=now, samples=tuple(samples), detail=detail)

    # -- topic ----------------------------------------------------------------------------------------

    def _partitions(self) -> list[int] | None:
        try:
            md = self.admin().list_topics(self.topic, timeout=self.timeout)
        except KafkaException as exc:
            raise DlqUnavailable("metadata", exc) from exc
        t = md.topics.get(self.topic)
        if t is None or t.error is not None:
            return None
        return sorted(t.partitions)

    def _collect_topic(self, now: float, detail: dict[str, Any]) -> list[Sample]:
        topic = self.topic
        assert topic is not None
        partitions = self._partitions()
        if partitions is None:  # not created yet: nothing to report, not an error
            detail["topic"] = {"name": topic, "exists": False}
            return []
        request = {TopicPartition(topic, p): OffsetSpec.latest() for p in partitions}
        try:
            futures = self.admin().list_offsets(request, request_timeout=self.timeout)
            listed = {tp.partition: f.result(timeout=self.timeout + 1.0).offset for tp, f in futures.items()}
        except Exception as exc:  # noqa: BLE001 - KafkaException or a timeout
            raise DlqUnavailable("list_offsets", exc) from exc
        fetched: dict[int, int] = {}
        read = 0
        if self.config.read_headers:
            read, fetched = self._read_new(partitions, listed)
        hwm = {p: max(listed.get(p, 0), fetched.get(p, 0)) for p in partitions}
        total = float(sum(hwm.values()))
        self._history.append((now, total))
        while self._history and self._history[0][0] < now - self.config.rate_window:
            self._history.popleft()
        growth = growth_per_minute(self._history, now, self.config.rate_window)
        tl = labels(topic=topic)
        out = [Sample("watchtower_dlq_messages", tl, total)]
        if growth is not None:
            out.append(Sample("watchtower_dlq_growth_per_minute", tl, growth))
        out += [
            Sample("watchtower_dlq_topic_records_total", labels(topic=topic, reason=r), float(n))
            for r, n in sorted(self.header_counts.items())
        ]
        detail["topic"] = {
            "name": topic,
            "exists": True,
            "partitions": len(partitions),
            "read": read,
            "messages": total,
        }
        return out

    def _read_new(self, partitions: list[int], listed: Mapping[int, int]) -> tuple[int, dict[int, int]]:
        """Read the records added since the last cycle; returns (records read, {partition: fetched hwm}).

        A partition is read when ListOffsets is past the consumer's position. Against tansu ListOffsets
        is the last batch's base offset + 1, still past the position as soon as a new batch lands.
        """
        c = self.consumer()
        new = [p for p in partitions if p not in self._assigned]
        # Against tansu OFFSET_END resolves to the last batch's base offset + 1, so the first read of a
        # partition started at the end can still return old records: they position, but do not count.
        uncounted = set(new) if self._first_assignment else set()
        if new:
            start = OFFSET_END if self._first_assignment else OFFSET_BEGINNING
            try:
                c.incremental_assign([TopicPartition(self.topic, p, start) for p in new])
            except KafkaException as exc:
                raise DlqUnavailable("assign", exc) from exc
            self._assigned.update(new)
        self._first_assignment = False
        try:
            positions = {
                tp.partition: tp.offset
                for tp in c.position([TopicPartition(self.topic, p) for p in self._assigned])
            }
        except KafkaException as exc:
            raise DlqUnavailable("position", exc) from exc
        # An unknown position (< 0: just assigned, nothing fetched yet) must be read until its EOF.
        behind = {p for p in self._assigned if positions.get(p, -1) < 0 or listed.get(p, 0) > positions[p]}
        read = 0
        deadline = time.monotonic() + self.timeout
        while read < self.config.max_records_per_cycle and behind:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            msgs = c.consume(min(1000, self.config.max_records_per_cycle - read), timeout=min(left, 0.5))
            for m in msgs:
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        behind.discard(m.partition())
                        continue
                    if err.fatal():
                        raise DlqUnavailable("consume", KafkaException(err))
                    continue
                if m.partition() not in uncounted:
                    self.header_counts[header_reason(m.headers())] += 1
                    read += 1
        fetched: dict[int, int] = {}
        for p in self._assigned:
            try:
                _, hi = c.get_watermark_offsets(TopicPartition(self.topic, p), cached=True)
            except KafkaException:
                continue
            if hi is not None and hi >= 0:
                fetched[p] = hi
        return read, fetched

    # -- table ----------------------------------------------------------------------------------------

    def _collect_table(self, detail: dict[str, Any]) -> list[Sample]:
        counter = self._counter
        assert counter is not None
        try:
            if not counter.exists():
                detail["table"] = {"path": self.table_path, "exists": False}
                return []
            counter.refresh()
        except Exception as exc:  # noqa: BLE001 - deltalake and pyarrow raise their own types
            raise DlqUnavailable("delta", exc) from exc
        detail["table"] = {
            "path": self.table_path,
            "exists": True,
            "version": counter.version,
            "rows": counter.rows,
            "files": len(counter.files),
            "files_read": counter.files_read,
            "files_from_stats": counter.files_from_stats,
        }
        return [
            Sample("watchtower_dlq_rows", labels(reason=r), float(n))
            for r, n in sorted(counter.totals.items())
        ]

    def close(self) -> None:
        try:
            if self._consumer is not None:
                self._consumer.close()
        except Exception:  # noqa: BLE001 - close must not raise
            pass
        self._consumer = None
        self._admin = None


def build(config: DlqConfig, ctx: BuildContext) -> DlqCollector | None:
    if not config.enabled:
        return None
    topic = ctx.pipeline.dlq_topic if config.topic is None else config.topic
    table = config.table or str(Path(ctx.pipeline.data_dir) / "delta" / "dlq")
    return DlqCollector(config, ctx.librdkafka(), topic, table)


KIND = CollectorKind("dlq", DlqConfig, build, SPECS, demo={"interval": 2.0})
