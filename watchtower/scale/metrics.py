"""Metric specs of the scaling controller (collector name `scaling`): one series set per target."""

from __future__ import annotations

from watchtower.core.types import Kind, MetricSpec

COLLECTOR = "scaling"
T = ("target",)
SPECS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "watchtower_scaling_desired_replicas",
        Kind.GAUGE,
        "Replicas the policy wants now (bounded; held back while vetoed).",
        T,
    ),
    MetricSpec(
        "watchtower_scaling_current_replicas",
        Kind.GAUGE,
        "Replicas the target runs, as its actuator reports them.",
        T,
    ),
    MetricSpec(
        "watchtower_scaling_required_replicas",
        Kind.GAUGE,
        "Replicas the measured need asks for, before min/max/partition bounds.",
        T,
    ),
    MetricSpec(
        "watchtower_scaling_partitions_capped",
        Kind.GAUGE,
        "1 while the need exceeds the partition count: partitions cap the scale-out.",
        T,
    ),
    MetricSpec(
        "watchtower_scaling_veto",
        Kind.GAUGE,
        "1 for the guard holding a change back now (sink_backpressure, rebalancing, ...), 0 for the others.",
        ("kind", "target"),
    ),
    MetricSpec(
        "watchtower_scaling_vetoes_total",
        Kind.COUNTER,
        "Cycles in which a guard held a change back, by guard.",
        ("kind", "target"),
    ),
    MetricSpec(
        "watchtower_scaling_actions_total",
        Kind.COUNTER,
        "Replica changes applied, by direction (up, down).",
        ("direction", "target"),
    ),
    MetricSpec(
        "watchtower_scaling_apply_errors_total",
        Kind.COUNTER,
        "Changes the actuator could not apply (refused, fenced, unreachable).",
        T,
    ),
    MetricSpec(
        "watchtower_scaling_last_action_replicas", Kind.GAUGE, "Replica count the last applied action set.", T
    ),
    MetricSpec(
        "watchtower_scaling_last_action_timestamp_seconds",
        Kind.GAUGE,
        "Wall time of the last applied action.",
        T,
    ),
    MetricSpec(
        "watchtower_scaling_leader",
        Kind.GAUGE,
        "1 when this daemon may act (holds the lease), else 0: it decides but does not apply.",
        T,
    ),
    MetricSpec(
        "watchtower_scaling_stuck_partitions",
        Kind.GAUGE,
        "Partitions left out of the sizing because their committed offset stopped while others moved.",
        T,
    ),
    MetricSpec(
        "watchtower_scaling_partition_stuck",
        Kind.GAUGE,
        "1 for each partition left out of the sizing as stuck.",
        ("partition", "target"),
    ),
    MetricSpec(
        "watchtower_scaling_capacity_per_replica",
        Kind.GAUGE,
        "Measured messages per second one replica processes (capacity mode).",
        T,
        unit="ops",
    ),
    MetricSpec(
        "watchtower_scaling_backlog_seconds",
        Kind.GAUGE,
        "Largest lag in seconds over the partitions the sizing used.",
        T,
    ),
    MetricSpec(
        "watchtower_scaling_sink_write_latency_seconds",
        Kind.GAUGE,
        "Latency of the controller's probe write to the sink's Redis (the timeout when it hangs).",
        T,
    ),
)
