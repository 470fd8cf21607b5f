"""The lag collector's memory, driven by hand-built cluster views and a fixed clock."""

from __future__ import annotations

import math

from watchtower.collectors.kafka_lag.config import KafkaLagConfig
from watchtower.collectors.kafka_lag.tracker import SPECS, ClusterView, GroupInfo, LagTracker

T0 = 50_000.0


def view(committed: dict, hwms: dict, groups: dict | None = None) -> ClusterView:
    groups = groups if groups is not None else {g: GroupInfo("stable", 1) for g in committed}
    return ClusterView(groups=groups, committed=committed, high_watermarks=hwms)


def cycle(tracker: LagTracker, v: ClusterView, now: float, timestamps: dict | None = None):
    wanted = tracker.observe(v, now)
    fetched = {k: timestamps[k] for k in wanted if timestamps and k in timestamps}
    return wanted, tracker.reading(v, now, fetched)


def value(reading, metric: str, **lbl) -> float | None:
    key = tuple(sorted((k, str(v)) for k, v in lbl.items()))
    return reading.values(metric).get(key)


def test_lag_rates_and_drain_over_two_cycles() -> None:
    tr = LagTracker(KafkaLagConfig(rate_window=60))
    _, r1 = cycle(tr, view({"g": {("t", 0): 100}}, {("t", 0): 150}), T0)
    assert value(r1, "watchtower_consumer_lag_messages", group="g", topic="t", partition=0) == 50
    assert value(r1, "watchtower_consumer_group_drain_seconds", group="g", topic="t") is None  # no rate yet
    _, r2 = cycle(tr, view({"g": {("t", 0): 200}}, {("t", 0): 220}), T0 + 10)
    assert value(r2, "watchtower_topic_produce_rate_messages_per_second", topic="t") == 7.0
    assert (
        value(r2, "watchtower_consumer_group_consume_rate_messages_per_second", group="g", topic="t") == 10.0
    )
    assert value(r2, "watchtower_consumer_group_drain_seconds", group="g", topic="t") == 20 / 3.0


def test_timestamps_are_fetched_once_per_offset_and_zero_lag_needs_none() -> None:
    tr = LagTracker(KafkaLagConfig(lag_seconds_method="auto"))
    v = view({"g": {("t", 0): 10, ("t", 1): 5}}, {("t", 0): 20, ("t", 1): 5})
    wanted, r = cycle(tr, v, T0, {("t", 0, 10): T0 - 30})
    assert wanted == [("t", 0, 10)]  # partition 1 has no lag: nothing to read
    assert value(r, "watchtower_consumer_lag_seconds", group="g", topic="t", partition=0) == 30.0
    assert value(r, "watchtower_consumer_lag_seconds", group="g", topic="t", partition=1) == 0.0
    wanted, r = cycle(tr, v, T0 + 5)
    assert wanted == []  # cached: an unchanged offset costs nothing
    assert value(r, "watchtower_consumer_lag_seconds", group="g", topic="t", partition=0) == 35.0
    assert value(r, "watchtower_lag_timestamp_fetches_total") == 1


def test_auto_switches_to_interpolation_above_the_partition_limit() -> None:
    tr = LagTracker(KafkaLagConfig(lag_seconds_method="auto", timestamp_max_partitions=2))
    hwms = {("t", p): 100 for p in range(3)}
    wanted, r = cycle(tr, view({"g": {("t", p): 40 for p in range(3)}}, hwms), T0)
    assert wanted == []
    # the table's first observation is all it knows: a lower bound of 0 s says nothing, so no sample
    # (an unknown age never reads as 0, the healthiest value)
    assert value(r, "watchtower_consumer_lag_seconds", group="g", topic="t", partition=0) is None
    assert r.detail["lag_seconds_methods"] == {"unknown": 3}
    _, r = cycle(tr, view({"g": {("t", p): 40 for p in range(3)}}, hwms), T0 + 20)
    # then a lower bound, counted as such
    assert value(r, "watchtower_consumer_lag_seconds", group="g", topic="t", partition=0) == 20.0
    assert r.detail["lag_seconds_methods"] == {"lower_bound": 3}
    assert value(r, "watchtower_consumer_lag_seconds_lower_bounds", group="g", topic="t") == 3


def test_lower_bounds_are_counted_per_group_and_topic_and_zero_when_every_age_is_exact() -> None:
    tr = LagTracker(KafkaLagConfig(lag_seconds_method="interpolation"))
    hwms = {("t", 0): 100, ("t", 1): 100, ("u", 0): 100}
    _, r = cycle(tr, view({"seen": dict.fromkeys(hwms, 100)}, hwms), T0)  # the offset tables begin
    assert value(r, "watchtower_consumer_lag_seconds_lower_bounds", group="seen", topic="t") == 0
    hwms = dict.fromkeys(hwms, 120)
    committed = {
        "seen": {("t", 0): 110, ("t", 1): 120, ("u", 0): 120},  # interpolated, nothing waiting, nothing
        "new": {("t", 0): 40, ("t", 1): 110, ("u", 0): 120},  # before the table, interpolated, nothing
    }
    _, r = cycle(tr, view(committed, hwms), T0 + 10)
    bounds = {
        (g, t): value(r, "watchtower_consumer_lag_seconds_lower_bounds", group=g, topic=t)
        for g in committed
        for t in ("t", "u")
    }
    assert bounds == {("seen", "t"): 0, ("seen", "u"): 0, ("new", "t"): 1, ("new", "u"): 0}
    # The bound itself is exported on the lag in seconds: at least the table's age.
    assert value(r, "watchtower_consumer_lag_seconds", group="new", topic="t", partition=0) == 10.0
    assert r.detail["groups"]["new"]["topics"]["t"]["lag_seconds_lower_bounds"] == 1
    assert r.detail["lag_seconds_methods"] == {"interpolation": 2, "none": 3, "lower_bound": 1}


def test_negative_lag_is_clamped_and_counted() -> None:
    tr = LagTracker(KafkaLagConfig())
    _, r = cycle(tr, view({"g": {("t", 0): 12}}, {("t", 0): 10}), T0)
    assert value(r, "watchtower_consumer_lag_messages", group="g", topic="t", partition=0) == 0
    assert value(r, "watchtower_lag_inconsistencies_total") == 1


def test_idle_topic_and_stuck_consumer_are_told_apart() -> None:
    tr = LagTracker(KafkaLagConfig(stall_after=30, idle_after=30))
    committed = {"idle": {("a", 0): 10}, "stuck": {("b", 0): 3}}
    hwms = {("a", 0): 10, ("b", 0): 10}
    for dt in (0, 10, 40):
        _, r = cycle(tr, view(committed, hwms), T0 + dt)
    assert value(r, "watchtower_consumer_group_status", group="idle", status="idle") == 1
    assert value(r, "watchtower_consumer_group_status", group="stuck", status="stuck") == 1
    assert value(r, "watchtower_consumer_group_status", group="stuck", status="ok") == 0
    assert r.detail["groups"]["stuck"]["topics"]["b"]["drain_seconds"] is None
    assert value(r, "watchtower_consumer_group_drain_seconds", group="stuck", topic="b") == math.inf


def test_inactive_group_is_reported_for_its_retention_then_dropped() -> None:
    tr = LagTracker(KafkaLagConfig(inactive_group_retention=60))
    groups = {"g": GroupInfo("empty", 0)}
    assert tr.retained_groups(groups, T0) == ["g"]
    assert tr.retained_groups(groups, T0 + 60) == ["g"]
    assert tr.retained_groups(groups, T0 + 61) == []
    assert tr.retained_groups({"g": GroupInfo("stable", 2)}, T0 + 62) == ["g"]  # came back
    assert tr.retained_groups({"g": GroupInfo("empty", 0)}, T0 + 63) == ["g"]  # clock restarts


def test_gone_partitions_and_groups_leave_no_series_or_memory() -> None:
    tr = LagTracker(KafkaLagConfig())
    cycle(tr, view({"g": {("t", 0): 1}, "h": {("u", 0): 1}}, {("t", 0): 5, ("u", 0): 5}), T0)
    _, r = cycle(tr, view({"g": {("t", 0): 1}}, {("t", 0): 5}), T0 + 1)
    assert {dict(s.labels).get("group") for s in r.samples} <= {"g", None}
    assert {dict(s.labels).get("topic") for s in r.samples} <= {"t", None}
    assert set(tr.tables) == {("t", 0)}
    assert set(tr.group_totals) == {("g", "t")}
    assert set(tr.topic_totals) == {"t"}


def test_group_selection_regexes() -> None:
    tr = LagTracker(KafkaLagConfig(groups_allow=["app-.*", "etl"], groups_deny=["app-test.*"]))
    assert [
        g for g in ("app-1", "app-test-2", "etl", "etl2", "watchtower-lag-probe") if tr.watches_group(g)
    ] == ["app-1", "etl"]
    assert not tr.watches_topic("__consumer_offsets")


def test_every_emitted_metric_is_declared() -> None:
    tr = LagTracker(KafkaLagConfig())
    v = view({"g": {("t", 0): 1}}, {("t", 0): 5})
    cycle(tr, v, T0)
    _, r = cycle(tr, v, T0 + 1, {("t", 0, 1): T0 - 1})
    declared = {s.name for s in SPECS}
    assert {s.metric for s in r.samples} <= declared
    spec_labels = {s.name: set(s.label_names) for s in SPECS}
    for s in r.samples:
        assert {k for k, _ in s.labels} == spec_labels[s.metric], s.metric
