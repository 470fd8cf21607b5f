"""`scaling:` in the config: the targets the controller sizes, the policy's knobs, and each target's actuator.

Every knob has a default that suits a consumer group of a few workers polled every 10 s; docs/scaling.md
explains each one with its formula. The actuator section is a union over the kinds in
`watchtower.scale.registry` (`kind: dry_run` unless you say otherwise: decisions and metrics only).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from watchtower.core.units import Duration
from watchtower.scale.registry import ActuatorConfig, default_config


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SinkGuardConfig(_Model):
    """When the downstream is the bottleneck, more consumers only push harder: scale-up is vetoed instead."""

    # Redis write latency above this (measured by the controller's own SET of a probe key) vetoes scale-up.
    # A probe that times out counts as latency = probe_timeout.
    redis_write_latency_max: Duration = Field(default=0.25, gt=0)
    probe_timeout: Duration = Field(default=1.0, gt=0)
    # Probe the daemon's Redis (redis.url, else the stack's: the pipeline's sink) every cycle; false: no probe.
    redis_probe: bool = True
    # Spark: the latest batch took longer than trigger_interval x this factor (watchtower_checkpoint_duration_seconds).
    spark_batch_over_trigger: float = Field(default=2.0, gt=0)
    spark_trigger_interval: Duration | None = Field(
        default=None, gt=0, description="default: pipeline.trigger_interval"
    )
    # Flink: any vertex's backpressured-time ratio above this (watchtower_backpressure_ratio).
    flink_backpressure_max: float = Field(default=0.5, gt=0, le=1)


class KedaModeConfig(_Model):
    """KEDA's Kafka scaler and the HPA behind it, reproduced (mode: keda). Defaults are KEDA's and the HPA's."""

    lag_threshold: int = Field(default=10, ge=1)
    activation_lag_threshold: int = Field(default=0, ge=0)
    allow_idle_consumers: bool = False
    exclude_persistent_lag: bool = False
    limit_to_partitions_with_lag: bool = False
    scale_to_zero_on_invalid_offset: bool = False
    # HPA: no change while |metric / (threshold x current) - 1| <= tolerance.
    tolerance: float = Field(default=0.1, ge=0)
    # HPA behavior defaults: scale-down stabilization 300 s; scale-up at most max(+100 %, +4 pods) per 15 s.
    scale_down_stabilization: Duration = Field(default=300.0, ge=0)
    scale_up_period: Duration = Field(default=15.0, gt=0)
    scale_up_percent: float = Field(default=100.0, gt=0)
    scale_up_pods: int = Field(default=4, ge=1)


class PolicyConfig(_Model):
    """watchtower's capacity policy (mode: capacity)."""

    # Inputs are rates and backlogs over this window of readings, never one reading.
    window: Duration = Field(default=60.0, gt=0)
    # The urgency and the falling-behind signal look at slopes over this last part of the window
    # (default: a third of `window`).
    short_window: Duration | None = Field(default=None, gt=0)
    # The backlog must be gone within this time: required capacity = input + backlog / catch_up.
    catch_up: Duration = Field(default=120.0, gt=0)
    # How long handing partitions over takes after a change, until one has been observed: the backlog
    # must drain in what is left of catch_up (at least half of it), as FLIP-271 deducts the restart time.
    rebalance_time: Duration = Field(default=15.0, ge=0)
    # Run replicas at this share of their measured capacity (FLIP-271 uses 0.7).
    target_utilization: float = Field(default=0.7, gt=0, le=1)
    # Consumers count as saturated (their rate is their capacity) while the backlog stays above this.
    busy_backlog: int = Field(default=1000, ge=1)
    # Optional capacity of one replica in messages/s, used until one has been measured.
    per_replica_rate: float | None = Field(default=None, gt=0)
    # A remembered capacity not re-measured for this long is stale: the next time the consumers fall
    # behind, their short-window rate replaces it (it still sizes the other decisions meanwhile).
    capacity_max_age: Duration = Field(default=1800.0, gt=0)
    # Scale-down happens only to the highest recommendation of this window (HPA's stabilization).
    scale_down_stabilization: Duration = Field(default=300.0, ge=0)
    max_step_up: int = Field(default=4, ge=1)
    max_step_down: int = Field(default=2, ge=1)
    # No action this long after the previous one, nor before the observed rebalance x rebalance_factor.
    cooldown: Duration = Field(default=60.0, ge=0)
    rebalance_factor: float = Field(default=1.5, ge=1)
    # A scale-up must raise the consume rate by verify_gain x the expected gain within verify_after,
    # else it is ineffective and further scale-up holds for ineffective_hold.
    verify_after: Duration = Field(default=90.0, gt=0)
    verify_gain: float = Field(default=0.3, gt=0, le=1)
    ineffective_hold: Duration = Field(default=600.0, ge=0)
    # A partition with lag whose committed offset has not moved for this long while others moved is stuck.
    stuck_after: Duration = Field(default=60.0, gt=0)
    # No input and no backlog over the window: the topic is idle and the target goes to min_replicas.
    idle_rate: float = Field(default=0.0, ge=0)


class TargetConfig(_Model):
    group: str
    topic: str
    mode: Literal["capacity", "keda"] = "capacity"
    interval: Duration = Field(default=15.0, gt=0)
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=10, ge=1)
    # The collector whose readings carry the group's lag (kafka_lag unless renamed).
    collector: str = "kafka_lag"
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    keda: KedaModeConfig = Field(default_factory=KedaModeConfig)
    sink: SinkGuardConfig = Field(default_factory=SinkGuardConfig)
    actuator: ActuatorConfig = Field(default_factory=default_config)

    @model_validator(mode="after")
    def _bounds(self) -> TargetConfig:
        short = self.policy.short_window
        if short is not None and short > self.policy.window:
            raise ValueError(
                f"policy.short_window ({short:g}s) is longer than policy.window ({self.policy.window:g}s): shorten short_window or leave it unset (window / 3)"
            )
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) is above max_replicas ({self.max_replicas}): lower min_replicas or raise max_replicas"
            )
        return self


class ScalingConfig(_Model):
    """`scaling.targets.<name>`: one controller loop per target. No targets: no controller."""

    targets: dict[str, TargetConfig] = Field(default_factory=dict)
