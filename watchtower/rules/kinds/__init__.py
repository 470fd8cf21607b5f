"""The rule kinds, by the name used in rule files (`kind: threshold`). Add a kind: one module, one line here."""

from __future__ import annotations

from watchtower.rules.base import RuleBase
from watchtower.rules.kinds.burn_rate import BurnRateRule
from watchtower.rules.kinds.consumer_status import ConsumerStatusRule
from watchtower.rules.kinds.growth import GrowthRule
from watchtower.rules.kinds.rate import RateRule
from watchtower.rules.kinds.threshold import ThresholdRule
from watchtower.rules.kinds.throughput import ThroughputFloorRule
from watchtower.rules.kinds.time_to_breach import TimeToBreachRule

KINDS: dict[str, type[RuleBase]] = {
    "threshold": ThresholdRule,
    "growth": GrowthRule,
    "time_to_breach": TimeToBreachRule,
    "rate": RateRule,
    "throughput_floor": ThroughputFloorRule,
    "consumer_status": ConsumerStatusRule,
    "burn_rate": BurnRateRule,
}

__all__ = ["KINDS"]
