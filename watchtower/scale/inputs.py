"""What the policy reads, windowed from the history of readings. Pure: a function of the history and `now`.

From the Kafka lag collector's readings of one group and topic: committed offsets and high watermarks per
partition (so rates are measured over the policy's own window, not the collector's), lag in messages
and seconds, the group's coordinator state and member count. From the pipeline's other collectors: the
sink signals (Spark batch duration, Flink backpressure). The controller adds the Redis write latency it
probed itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from watchtower.core.history import History
from watchtower.core.types import Reading

REBALANCING_STATES = frozenset({"preparing_rebalancing", "completing_rebalancing"})


@dataclass(frozen=True, slots=True)
class SinkSignals:
    """The downstream's health; None where not measured."""

    redis_write_latency: float | None = None
    spark_batch_seconds: float | None = None
    flink_backpressure: float | None = None


@dataclass(frozen=True, slots=True)
class Inputs:
    """One target's windowed inputs at `at`. Rates and backlogs leave the stuck partitions out."""

    at: float
    partitions: int = 0
    end: Mapping[int, int] = field(default_factory=dict)  # latest high watermark per partition
    committed: Mapping[int, int] = field(default_factory=dict)  # latest committed offset (absent: none yet)
    stuck: tuple[int, ...] = ()
    input_rate: float | None = None  # messages/s produced over the window
    consume_rate: float | None = None  # messages/s committed over the window (since the last action)
    backlog: int = 0  # latest lag summed over the partitions that are not stuck
    min_backlog: int | None = None  # smallest such backlog over the window: above busy_backlog = saturated
    backlog_seconds: float | None = None  # largest lag in seconds over the partitions that are not stuck
    group_state: str | None = None
    members: int | None = None
    busy_ratio: float | None = None  # where the engine reports one (0..1)
    span: float = 0.0  # seconds between the first and the last reading the rates used
    # Over the short window (the last `short_window` seconds; least-squares slopes, so a consumer that
    # commits in batches does not make them jump): what the policy reacts to before a whole window.
    short_input_rate: float | None = None  # messages/s produced
    short_consume_rate: float | None = None  # messages/s committed (since the last action's rebalance)
    backlog_growth: float | None = None  # messages/s the backlog grows by (< 0: drains); any replicas
    short_min_backlog: int | None = None  # smallest backlog over the short window
    short_span: float = 0.0  # seconds the short consume rate spans
    sink: SinkSignals = field(default_factory=SinkSignals)

    @property
    def has_data(self) -> bool:
        return self.partitions > 0


def _partition_values(r: Reading, metric: str, group: str | None, topic: str) -> dict[int, int]:
    out = {}
    for s in r.samples:
        if s.metric != metric:
            continue
        lbl = dict(s.labels)
        if lbl.get("topic") == topic and (group is None or lbl.get("group") == group):
            out[int(lbl["partition"])] = int(s.value)
    return out


def _rate(
    first: tuple[float, Mapping[int, int]], last: tuple[float, Mapping[int, int]], skip: set[int]
) -> float | None:
    dt = last[0] - first[0]
    if dt <= 0:
        return None
    common = (first[1].keys() & last[1].keys()) - skip
    return max(0.0, sum(last[1][p] - first[1][p] for p in common) / dt)


def short_window_of(window: float, short_window: float | None) -> float:
    """The short window in seconds: `short_window` when set, else a third of `window`."""
    return window / 3 if short_window is None else short_window


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (t, value) points; None for fewer than two distinct times."""
    if len(points) < 2:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    if var <= 0:
        return None
    return sum((t - mt) * (v - mv) for t, v in points) / var


def _total(r: Reading, metric: str, group: str | None, topic: str, skip: set[int]) -> float:
    return float(sum(v for p, v in _partition_values(r, metric, group, topic).items() if p not in skip))


def stuck_partitions(
    series: list[tuple[float, Mapping[int, int]]], lag: Mapping[int, int], now: float, stuck_after: float
) -> tuple[int, ...]:
    """Partitions with lag whose committed offset has not moved for `stuck_after` while another one moved.

    `series` is (time, committed per partition), oldest first. When every partition stands still the
    whole group is stalled (consumers down, sink hung): that is not a stuck partition, nothing is excluded.
    """
    base = None
    for at, offsets in series:
        if at <= now - stuck_after:
            base = offsets
    if base is None or not series:
        return ()
    latest = series[-1][1]
    still = {p for p, o in latest.items() if base.get(p) == o and lag.get(p, 0) > 0}
    moved = {p for p, o in latest.items() if p in base and base[p] != o}
    return tuple(sorted(still)) if moved else ()


def gather(
    history: History,
    now: float,
    *,
    group: str,
    topic: str,
    window: float,
    stuck_after: float,
    collector: str = "kafka_lag",
    rates_since: float | None = None,
    short_window: float | None = None,
    sink: SinkSignals = SinkSignals(),  # noqa: B008 - frozen
) -> Inputs:
    """Window the history for one group and topic. `rates_since` (the last action) keeps the rates from
    mixing readings taken with another replica count. `short_window` (default: a third of `window`) is
    the sub-window of the short rates and the backlog's growth."""
    readings = history.readings(collector, since=now - max(window, stuck_after) - window)
    readings = tuple(r for r in readings if r.at <= now)
    if not readings:
        return Inputs(at=now, sink=sink)
    latest = readings[-1]
    end = _partition_values(latest, "watchtower_topic_partition_high_watermark", None, topic)
    committed = _partition_values(latest, "watchtower_consumer_committed_offset", group, topic)
    lag = _partition_values(latest, "watchtower_consumer_lag_messages", group, topic)
    seconds = {}
    for s in latest.samples:
        if s.metric == "watchtower_consumer_lag_seconds":
            lbl = dict(s.labels)
            if lbl.get("group") == group and lbl.get("topic") == topic:
                seconds[int(lbl["partition"])] = s.value
    committed_series = [
        (r.at, _partition_values(r, "watchtower_consumer_committed_offset", group, topic)) for r in readings
    ]
    stuck = stuck_partitions(committed_series, lag, latest.at, stuck_after)
    skip = set(stuck)

    # The input rate does not depend on the replicas: the whole window. The consume rate does: only
    # readings taken since the last action's rebalance ended (none yet: None).
    in_window = [r for r in readings if r.at >= now - window]
    input_rate = None
    if len(in_window) >= 2:
        first = in_window[0]
        input_rate = _rate(
            (first.at, _partition_values(first, "watchtower_topic_partition_high_watermark", None, topic)),
            (latest.at, end),
            skip,
        )
    since = [r for r in in_window if rates_since is None or r.at >= rates_since]
    consume_rate, span = None, 0.0
    if len(since) >= 2:
        first = since[0]
        span = latest.at - first.at
        consume_rate = _rate(
            (first.at, _partition_values(first, "watchtower_consumer_committed_offset", group, topic)),
            (latest.at, committed),
            skip,
        )
    backlogs = [
        sum(
            v
            for p, v in _partition_values(r, "watchtower_consumer_lag_messages", group, topic).items()
            if p not in skip
        )
        for r in readings
        if r.at >= now - window
    ]
    # The short window: slopes over its readings. The backlog's growth does not depend on the replicas
    # (it is what the urgency looks at, during a handover too); the consume rate does (since the rebalance).
    short = short_window_of(window, short_window)
    recent = [(r, b) for r, b in zip(in_window, backlogs, strict=True) if r.at >= now - short]
    growth = slope([(r.at, float(b)) for r, b in recent])
    short_in = slope(
        [(r.at, _total(r, "watchtower_topic_partition_high_watermark", None, topic, skip)) for r, _ in recent]
    )
    settled = [r for r, _ in recent if rates_since is None or r.at >= rates_since]
    short_out = slope(
        [(r.at, _total(r, "watchtower_consumer_committed_offset", group, topic, skip)) for r in settled]
    )
    state = members = None
    for s in latest.samples:
        lbl = dict(s.labels)
        if lbl.get("group") != group:
            continue
        if s.metric == "watchtower_consumer_group_state" and s.value == 1:
            state = lbl.get("state")
        elif s.metric == "watchtower_consumer_group_members":
            members = int(s.value)
    live_seconds = [v for p, v in seconds.items() if p not in skip]
    return Inputs(
        at=latest.at,
        partitions=len(end),
        end=MappingProxyType(end),
        committed=MappingProxyType(committed),
        stuck=stuck,
        input_rate=input_rate,
        consume_rate=consume_rate,
        backlog=sum(v for p, v in lag.items() if p not in skip),
        min_backlog=min(backlogs) if backlogs else None,
        backlog_seconds=max(live_seconds) if live_seconds else None,
        group_state=state,
        members=members,
        span=span,
        short_input_rate=None if short_in is None else max(0.0, short_in),
        short_consume_rate=None if short_out is None else max(0.0, short_out),
        backlog_growth=growth,
        short_min_backlog=min(b for _, b in recent) if recent else None,
        short_span=settled[-1].at - settled[0].at if len(settled) >= 2 else 0.0,
        sink=sink,
    )


def sink_signals(
    history: History, now: float, redis_write_latency: float | None, max_age: float
) -> SinkSignals:
    """The Spark and Flink collectors' latest sink-side numbers (no older than `max_age`), plus the probe's."""
    spark = flink = None
    for reading in history.snapshot().readings.values():
        if now - reading.at > max_age:
            continue
        for s in reading.samples:
            if s.metric == "watchtower_checkpoint_duration_seconds" and ("engine", "spark") in s.labels:
                spark = max(spark or 0.0, s.value)
            elif s.metric == "watchtower_backpressure_ratio":
                flink = max(flink or 0.0, s.value)
    return SinkSignals(redis_write_latency, spark, flink)
