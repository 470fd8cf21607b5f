"""An adaptive collection interval that follows the collector's own cost. Pure: cost in, interval out.

A cycle costing `c` seconds asks for an interval of `c / cost_ratio` (with the default 0.1, the collector
spends at most a tenth of its time collecting), clamped to [`min_interval`, `max_interval`] and rounded
up to `min_interval` times a power of two (0.25, 0.5, 1, 2, 4 ... s), so a noisy cost does not reschedule
the job every cycle. The cost estimate rises at once with a dearer cycle (back off as partitions grow) and
falls slowly (a quarter of the way per cycle), and the interval only steps down when the estimate is
comfortably (`1 - hysteresis`) below the next lower step: a machine that is briefly quiet does not make
the collector fast and then slow again.

    interval_policy: {enabled: true, min_interval: 250ms, max_interval: 30s, cost_ratio: 0.1}

The runner feeds it each cycle's wall time and reschedules the collector when the answer changes; the
interval in use is `watchtower_collector_interval_seconds`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from watchtower.core.units import Duration


class IntervalPolicyConfig(BaseModel):
    """`daemon.collectors.<name>.interval_policy`: off by default (the fixed `interval` is used)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    min_interval: Duration = Field(default=0.25, gt=0)
    max_interval: Duration = Field(default=30.0, gt=0)
    # The share of its time the collector may spend collecting: interval >= cost / cost_ratio.
    cost_ratio: float = Field(default=0.1, gt=0, le=1)
    hysteresis: float = Field(default=0.2, ge=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> IntervalPolicyConfig:
        if self.max_interval < self.min_interval:
            raise ValueError(
                f"interval_policy: max_interval ({self.max_interval:g}s) is below min_interval "
                f"({self.min_interval:g}s); raise max_interval or lower min_interval"
            )
        return self


@dataclass(frozen=True, slots=True)
class IntervalState:
    interval: float  # in use now
    cost: float  # the smoothed cost estimate, seconds per cycle


def step_of(target: float, cfg: IntervalPolicyConfig) -> float:
    """The smallest `min_interval * 2**k` at or above `target`, within [min_interval, max_interval]."""
    lo, hi = cfg.min_interval, cfg.max_interval
    if target <= lo:
        return lo
    k = math.ceil(math.log2(target / lo) - 1e-9)
    return min(hi, lo * 2**k)


def start(cfg: IntervalPolicyConfig, first_interval: float) -> IntervalState:
    """Before any cycle: the configured interval, within the policy's bounds."""
    return IntervalState(min(cfg.max_interval, max(cfg.min_interval, first_interval)), 0.0)


def next_interval(state: IntervalState, cost: float, cfg: IntervalPolicyConfig) -> IntervalState:
    """The state after a cycle that took `cost` seconds of wall time."""
    cost = max(0.0, cost)
    smoothed = cost if cost >= state.cost else state.cost + 0.25 * (cost - state.cost)
    wanted = step_of(smoothed / cfg.cost_ratio, cfg)
    if wanted > state.interval:
        return IntervalState(wanted, smoothed)  # dearer: back off at once
    if wanted < state.interval and smoothed / cfg.cost_ratio <= wanted * (1.0 - cfg.hysteresis):
        return IntervalState(wanted, smoothed)  # cheaper, well below the lower step's budget
    return IntervalState(state.interval, smoothed)
