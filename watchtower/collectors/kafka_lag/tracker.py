"""The memory of the Kafka lag collector: what it saw in earlier cycles, turned into one Reading per cycle.

No I/O here. `ClusterView` is what one cycle read from Kafka; `LagTracker.observe` folds it in and says
which record timestamps it would like; `LagTracker.reading` turns the view plus those timestamps into
samples. Unit tests drive it with hand-built views and a fixed `now`.
"""

from __future__ import annotations

import gc
import math
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from watchtower.collectors.kafka_lag.config import KafkaLagConfig
from watchtower.collectors.kafka_lag.estimate import NOT_READ, is_unbounded, lag_seconds_estimate
from watchtower.collectors.kafka_lag.model import (
    Point,
    Status,
    clamp_lag,
    group_retained,
    group_status,
    partition_status,
    time_to_drain,
    trim_points,
    windowed_rate,
)
from watchtower.collectors.kafka_lag.seconds import OffsetTable, record_observation
from watchtower.core.types import Kind, Labels, MetricSpec, Reading, Sample

GROUP_STATES = ("unknown", "preparing_rebalancing", "completing_rebalancing", "stable", "dead", "empty")
INACTIVE_STATES = frozenset({"empty", "dead"})

_GTP = ("group", "partition", "topic")
SPECS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "watchtower_consumer_committed_offset",
        Kind.GAUGE,
        "Offset the group committed (the next record it will read).",
        _GTP,
    ),
    MetricSpec(
        "watchtower_topic_partition_high_watermark",
        Kind.GAUGE,
        "High watermark of the partition (offset of the next record to be written).",
        ("partition", "topic"),
    ),
    MetricSpec(
        "watchtower_consumer_lag_messages",
        Kind.GAUGE,
        "High watermark minus committed offset, clamped at zero.",
        _GTP,
    ),
    MetricSpec(
        "watchtower_consumer_lag_seconds",
        Kind.GAUGE,
        "Age of the oldest unconsumed record (0 when nothing is waiting); see docs/lag.md.",
        _GTP,
    ),
    MetricSpec(
        "watchtower_consumer_group_lag_messages",
        Kind.GAUGE,
        "Lag of the group summed over the partitions of a topic.",
        ("group", "topic"),
    ),
    MetricSpec(
        "watchtower_consumer_group_max_lag_seconds",
        Kind.GAUGE,
        "Largest lag in seconds of the group over the partitions of a topic.",
        ("group", "topic"),
    ),
    MetricSpec(
        "watchtower_consumer_lag_seconds_lower_bounds",
        Kind.GAUGE,
        "Partitions of the group on the topic whose watchtower_consumer_lag_seconds is only a lower bound "
        "(no record timestamp, committed offset older than the offset table); 0 when every one is exact.",
        ("group", "topic"),
    ),
    MetricSpec(
        "watchtower_consumer_group_consume_rate_messages_per_second",
        Kind.GAUGE,
        "Committed offsets advanced per second over the rate window.",
        ("group", "topic"),
    ),
    MetricSpec(
        "watchtower_consumer_group_drain_seconds",
        Kind.GAUGE,
        "Estimated time until the lag is consumed at current rates; +Inf when it is not shrinking.",
        ("group", "topic"),
    ),
    MetricSpec(
        "watchtower_topic_produce_rate_messages_per_second",
        Kind.GAUGE,
        "High watermarks advanced per second over the rate window, summed over partitions.",
        ("topic",),
    ),
    MetricSpec(
        "watchtower_consumer_group_status",
        Kind.GAUGE,
        "1 for the group's current status (idle, ok, lagging, stuck), 0 for the others.",
        ("group", "status"),
    ),
    MetricSpec(
        "watchtower_consumer_group_state",
        Kind.GAUGE,
        "1 for the group's coordinator state (stable, empty, ...), 0 for the others.",
        ("group", "state"),
    ),
    MetricSpec(
        "watchtower_consumer_group_members",
        Kind.GAUGE,
        "Members of the group as the coordinator reports them.",
        ("group",),
    ),
    MetricSpec(
        "watchtower_lag_inconsistencies_total",
        Kind.COUNTER,
        "Partitions seen with a committed offset above the high watermark (lag clamped to 0).",
    ),
    MetricSpec(
        "watchtower_lag_timestamp_fetches_total",
        Kind.COUNTER,
        "Records fetched to read a timestamp for lag in seconds (cache misses).",
    ),
)


@dataclass(frozen=True, slots=True)
class GroupInfo:
    state: str = "unknown"
    members: int = 0


@dataclass(frozen=True, slots=True)
class ClusterView:
    """What one cycle read: groups with their committed offsets, partitions with their high watermarks."""

    groups: Mapping[str, GroupInfo]  # every watched group that exists, whether or not it has offsets
    committed: Mapping[str, Mapping[tuple[str, int], int]]  # group -> (topic, partition) -> offset
    high_watermarks: Mapping[tuple[str, int], int]  # every partition of every topic the groups read
    errors: tuple[str, ...] = ()


TimestampKey = tuple[str, int, int]
LOWER_BOUNDS = "watchtower_consumer_lag_seconds_lower_bounds"
COMMITTED, LAG, LAG_SECONDS = (
    "watchtower_consumer_committed_offset",
    "watchtower_consumer_lag_messages",
    "watchtower_consumer_lag_seconds",
)  # (topic, partition, offset)


@dataclass(slots=True)
class _PartitionMemory:
    committed: int
    changed_at: float
    labels: Labels  # built once: fewer objects per cycle (and less for the garbage collector to scan)


@contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _labels(g: str, t: str, p: int) -> Labels:
    return (("group", g), ("partition", str(p)), ("topic", t))


@dataclass
class LagTracker:
    config: KafkaLagConfig
    collector: str = "kafka_lag"
    tables: dict[tuple[str, int], OffsetTable] = field(default_factory=dict)
    committed_memory: dict[tuple[str, str, int], _PartitionMemory] = field(default_factory=dict)
    topic_totals: dict[str, list[Point]] = field(default_factory=dict)
    group_totals: dict[tuple[str, str], list[Point]] = field(default_factory=dict)
    inactive_since: dict[str, float] = field(default_factory=dict)
    timestamp_cache: dict[TimestampKey, float | None] = field(default_factory=dict)
    partition_labels: dict[tuple[str, int], Labels] = field(default_factory=dict)
    inconsistencies: int = 0
    timestamp_fetches: int = 0

    def __post_init__(self) -> None:
        self._probing: set[TimestampKey] = set()  # asked of the probe this cycle
        self._allow = [re.compile(p) for p in self.config.groups_allow]
        self._deny = [re.compile(p) for p in self.config.groups_deny]
        self._topics_deny = [re.compile(p) for p in self.config.topics_deny]
        self._topic_memo: dict[str, bool] = {}

    # -- selection -------------------------------------------------------------------------------------

    def watches_group(self, group: str) -> bool:
        if group == self.config.probe_group_id:
            return False
        return any(p.fullmatch(group) for p in self._allow) and not any(
            p.fullmatch(group) for p in self._deny
        )

    def watches_topic(self, topic: str) -> bool:
        watched = self._topic_memo.get(topic)
        if watched is None:
            watched = self._topic_memo[topic] = not any(p.fullmatch(topic) for p in self._topics_deny)
        return watched

    def retained_groups(self, groups: Mapping[str, GroupInfo], now: float) -> list[str]:
        """Groups still worth their offsets fetch; forgets groups that are gone from the cluster."""
        for gone in set(self.inactive_since) - set(groups):
            del self.inactive_since[gone]
        keep = []
        for g, info in groups.items():
            if info.state in INACTIVE_STATES:
                self.inactive_since.setdefault(g, now)
            else:
                self.inactive_since.pop(g, None)
            if group_retained(self.inactive_since.get(g), now, self.config.inactive_group_retention):
                keep.append(g)
        return keep

    # -- one cycle -------------------------------------------------------------------------------------

    def observe(self, view: ClusterView, now: float) -> list[TimestampKey]:
        """Fold the view into memory; return the uncached record timestamps worth fetching (maybe none)."""
        hwms = view.high_watermarks
        for tp, hwm in hwms.items():
            self.tables[tp] = record_observation(
                self.tables.get(tp, ()), hwm, now, self.config.offset_table_size
            )
        for gone in self.tables.keys() - hwms.keys():
            del self.tables[gone]
            self.partition_labels.pop(gone, None)

        seen: set[tuple[str, str, int]] = set()
        wanted: set[TimestampKey] = set()
        for g, offsets in view.committed.items():
            for (t, p), committed in offsets.items():
                hwm = hwms.get((t, p))
                if hwm is None:
                    continue
                key = (g, t, p)
                seen.add(key)
                memory = self.committed_memory.get(key)
                if memory is None:
                    self.committed_memory[key] = _PartitionMemory(committed, now, _labels(g, t, p))
                elif memory.committed != committed:
                    memory.committed, memory.changed_at = committed, now
                if hwm > committed:
                    wanted.add((t, p, committed))
        for gone in self.committed_memory.keys() - seen:
            del self.committed_memory[gone]

        # The cache keeps only offsets some group still sits on, so it never grows past the partition count.
        for stale in self.timestamp_cache.keys() - wanted:
            del self.timestamp_cache[stale]
        method = self.config.lag_seconds_method
        if method == "interpolation" or (
            method == "auto" and len(wanted) > self.config.timestamp_max_partitions
        ):
            self._probing = set()
            return []
        asked = sorted(wanted - self.timestamp_cache.keys())
        self._probing = set(asked)
        return asked

    def unplaced(self, keys: list[TimestampKey]) -> list[TimestampKey]:
        """The keys interpolation cannot place (their offset predates the table): without the record's
        timestamp they have no lag in seconds at all this cycle, so the collector waits for those."""
        return [k for k in keys if is_unbounded(self.tables.get((k[0], k[1]), ()), k[2])]

    def reading(self, view: ClusterView, now: float, fetched: Mapping[TimestampKey, float | None]) -> Reading:
        """Samples for this cycle. `fetched` holds the record timestamps read after `observe` (epoch s)."""
        # Tens of thousands of samples, none of them garbage: the collector's passes over them (and over
        # everything else the process holds) while they are built were half of this call's time at
        # 10,000 partitions. Collection resumes right after.
        with _gc_paused():
            return self._reading(view, now, fetched)

    def _reading(
        self, view: ClusterView, now: float, fetched: Mapping[TimestampKey, float | None]
    ) -> Reading:
        self.timestamp_fetches += len(fetched)
        self.timestamp_cache.update(fetched)
        cfg = self.config
        use_timestamps = cfg.lag_seconds_method != "interpolation"
        samples: list[Sample] = []
        add = samples.append
        hwms = view.high_watermarks
        hwms_get, tables_get, memory_get = hwms.get, self.tables.get, self.committed_memory.get
        stall, idle = cfg.stall_after, cfg.idle_after
        methods: dict[str, int] = defaultdict(int)

        topics = sorted({t for t, _ in hwms})
        partition_labels = self.partition_labels
        for tp, hwm in hwms.items():
            labels = partition_labels.get(tp)
            if labels is None:
                labels = partition_labels[tp] = (("partition", str(tp[1])), ("topic", tp[0]))
            add(Sample("watchtower_topic_partition_high_watermark", labels, float(hwm)))
        topic_hwm_sum: dict[str, int] = defaultdict(int)
        for (t, _), hwm in hwms.items():
            topic_hwm_sum[t] += hwm
        produce_rate: dict[str, float | None] = {}
        for t in topics:
            pts = self.topic_totals.get(t, [])
            pts = trim_points([*pts, (now, float(topic_hwm_sum[t]))], now, cfg.rate_window)
            self.topic_totals[t] = pts
            produce_rate[t] = windowed_rate(pts, now, cfg.rate_window)
            if produce_rate[t] is not None:
                add(
                    Sample(
                        "watchtower_topic_produce_rate_messages_per_second", (("topic", t),), produce_rate[t]
                    )
                )
        for gone in self.topic_totals.keys() - set(topics):
            del self.topic_totals[gone]

        detail_groups: dict[str, dict] = {}
        live_group_topics: set[tuple[str, str]] = set()
        for g in sorted(view.groups):
            info = view.groups[g]
            offsets = view.committed.get(g)
            if offsets is None:
                continue  # past its retention, or its offsets could not be read this cycle
            per_topic_lag: dict[str, int] = defaultdict(int)
            per_topic_committed: dict[str, int] = defaultdict(int)
            per_topic_max_seconds: dict[str, float] = {}
            per_topic_lower_bounds: dict[str, int] = defaultdict(int)
            statuses: set[Status] = set()
            for (t, p), committed in offsets.items():
                hwm = hwms_get((t, p))
                if hwm is None:
                    continue
                lag, inconsistent = clamp_lag(hwm, committed)
                if inconsistent:
                    self.inconsistencies += 1
                memory = memory_get((g, t, p))
                labels = memory.labels if memory is not None else _labels(g, t, p)
                add(Sample(COMMITTED, labels, float(committed)))
                add(Sample(LAG, labels, float(lag)))
                per_topic_committed[t] += committed
                if lag == 0:
                    methods["none"] += 1
                    add(Sample(LAG_SECONDS, labels, 0.0))
                    per_topic_lag.setdefault(t, 0)
                    table = tables_get((t, p))
                    # Only the watermark's age matters without lag (idle or not).
                    statuses.add(
                        partition_status(0, now, now, table[-1].first_seen if table else now, stall, idle)
                    )
                    continue
                seconds, method = self._lag_seconds(t, p, committed, lag, now, use_timestamps)
                methods[method] += 1
                if method == "lower_bound":
                    per_topic_lower_bounds[t] += 1
                if seconds is not None:
                    add(Sample(LAG_SECONDS, labels, seconds))
                    if seconds > per_topic_max_seconds.get(t, 0.0):
                        per_topic_max_seconds[t] = seconds
                per_topic_lag[t] += lag
                # With lag, only the committed offset's age matters (stuck or not).
                statuses.add(
                    partition_status(lag, now, memory.changed_at if memory else now, now, stall, idle)
                )
            net_rates: list[float | None] = []
            topics_detail = {}
            for t in sorted(per_topic_lag):
                live_group_topics.add((g, t))
                gl = (("group", g), ("topic", t))
                pts = self.group_totals.get((g, t), [])
                pts = trim_points([*pts, (now, float(per_topic_committed[t]))], now, cfg.rate_window)
                self.group_totals[(g, t)] = pts
                consume = windowed_rate(pts, now, cfg.rate_window)
                produce = produce_rate.get(t)
                net_rates.append(None if consume is None or produce is None else consume - produce)
                drain = time_to_drain(per_topic_lag[t], consume, produce)
                add(Sample("watchtower_consumer_group_lag_messages", gl, float(per_topic_lag[t])))
                if t in per_topic_max_seconds:
                    add(Sample("watchtower_consumer_group_max_lag_seconds", gl, per_topic_max_seconds[t]))
                add(Sample(LOWER_BOUNDS, gl, float(per_topic_lower_bounds.get(t, 0))))
                if consume is not None:
                    add(Sample("watchtower_consumer_group_consume_rate_messages_per_second", gl, consume))
                if drain is not None:
                    add(Sample("watchtower_consumer_group_drain_seconds", gl, drain))
                topics_detail[t] = {
                    "lag_messages": per_topic_lag[t],
                    "max_lag_seconds": per_topic_max_seconds.get(t),
                    "lag_seconds_lower_bounds": per_topic_lower_bounds.get(t, 0),
                    "consume_rate": consume,
                    "produce_rate": produce,
                    "drain_seconds": None if drain is None or math.isinf(drain) else drain,
                    "draining": drain is not None and not math.isinf(drain),
                }
            status = group_status(statuses, net_rates, sum(per_topic_lag.values()))
            for s in Status:
                add(
                    Sample(
                        "watchtower_consumer_group_status",
                        (("group", g), ("status", s.value)),
                        float(s is status),
                    )
                )
            for st in GROUP_STATES:
                add(
                    Sample(
                        "watchtower_consumer_group_state",
                        (("group", g), ("state", st)),
                        float(st == info.state),
                    )
                )
            add(Sample("watchtower_consumer_group_members", (("group", g),), float(info.members)))
            detail_groups[g] = {
                "state": info.state,
                "members": info.members,
                "status": status.value,
                "inactive_since": self.inactive_since.get(g),
                "topics": topics_detail,
            }
        for gone in self.group_totals.keys() - live_group_topics:
            del self.group_totals[gone]

        add(Sample("watchtower_lag_inconsistencies_total", (), float(self.inconsistencies)))
        add(Sample("watchtower_lag_timestamp_fetches_total", (), float(self.timestamp_fetches)))
        detail = {
            "groups": detail_groups,
            "partitions": len(hwms),
            "lag_seconds_methods": dict(methods),
            "errors": list(view.errors),
        }
        return Reading(self.collector, now, tuple(samples), detail)

    def _lag_seconds(
        self, t: str, p: int, committed: int, lag: int, now: float, use_timestamps: bool
    ) -> tuple[float | None, str]:
        key = (t, p, committed)
        ts = self.timestamp_cache.get(key, NOT_READ) if use_timestamps else NOT_READ
        return lag_seconds_estimate(
            lag=lag,
            committed=committed,
            table=self.tables.get((t, p), ()),
            now=now,
            timestamp=ts,
            probing=key in self._probing,
        )
