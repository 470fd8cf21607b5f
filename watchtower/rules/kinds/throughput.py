"""throughput_floor: output below a floor while input keeps coming.

Two signals, each a gauge (averaged over `window`) or a counter (per-second rate over `window`, resets
handled). Breaches when output < `floor` and input > `input_min`: a quiet pipeline with no input is fine, a
job that stopped processing while producers still write is not. Series are combined per `by` group; an input
without the `by` labels (e.g. a topic-wide rate) applies to every group.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from watchtower.alerting.model import RuleResult
from watchtower.core.types import Labels, Reading
from watchtower.core.units import Duration
from watchtower.rules.base import RuleBase, fmt_duration
from watchtower.rules.selector import SelectorField
from watchtower.rules.series import Aggregate, combine, grouped, rates, window


class Signal(BaseModel):
    """A selector, read as a gauge (average over the window) or a counter (per-second rate).

    Series are combined per `by` group with `aggregate` (sum by default; `max` suits per-vertex job rates,
    where a sum would count a record once per operator it passes).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    selector: SelectorField
    counter: bool = False
    aggregate: Aggregate = Aggregate.SUM

    @field_validator("aggregate")
    @classmethod
    def _combines(cls, v: Aggregate) -> Aggregate:
        if v is Aggregate.NONE:
            raise ValueError("a signal is combined into one value per group: use sum, max, min or avg")
        return v

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return {"selector": v} if isinstance(v, str) else v


class ThroughputFloorRule(RuleBase):
    DEFAULT_SUMMARY = (
        "{rule}: output {value:.6g}/s below floor {bound:.6g}/s while input is {input:.6g}/s ({labels})"
    )
    EXTRAS = {"input": 1.0, "window": "2m"}

    kind: Literal["throughput_floor"] = "throughput_floor"
    output: Signal
    input: Signal
    floor: float = Field(gt=0)
    input_min: float = Field(0.0, ge=0)
    window: Duration = Field(gt=0)
    by: tuple[str, ...] = ()

    def evaluate(self, history: Sequence[Reading], now: float) -> list[RuleResult]:
        produced = self._measure(self.output, history, now)
        consumed = self._measure(self.input, history, now)
        if not produced:
            return [self.no_data()]
        out: list[RuleResult] = []
        for key in sorted(produced):
            incoming = consumed.get(key, consumed.get(()))
            if incoming is None:
                out.append(self.no_data(key))
                continue
            value = produced[key]
            out.append(
                self.result(
                    key,
                    breaching=value < self.floor and incoming > self.input_min,
                    value=value,
                    bound=self.floor,
                    input=incoming,
                    window=fmt_duration(self.window),
                )
            )
        return out

    def _measure(self, signal: Signal, history: Sequence[Reading], now: float) -> dict[Labels, float]:
        w = window(history, signal.selector, now, since=now - self.window)
        if w.empty:
            return {}
        current = w.take(w.current())
        if signal.counter:
            per_series, has_rate = rates(current)
            rated, values = current.take(has_rate), per_series[has_rate]
            codes, keys = rated.groups(signal.aggregate, self.by)
            combined, _ = combine(
                values[None, :], np.ones((1, values.size), dtype=bool), codes, len(keys), signal.aggregate
            )
            return {key: float(combined[0, i]) for i, key in enumerate(keys)}
        g = grouped(current, signal.aggregate, self.by)
        mean = np.where(g.present, g.values, 0.0).sum(axis=0) / g.present.sum(
            axis=0
        )  # over its points in time
        return {key: float(mean[i]) for i, key in enumerate(g.keys)}
