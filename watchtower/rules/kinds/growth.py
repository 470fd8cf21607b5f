"""growth: the newest value is at least `factor` times the lowest value seen within `window`.

The early warning before a 10x blow-up: lag doubling in ten minutes says more than any fixed bound. The
baseline is never below `floor`, so growth from zero or from a handful of messages does not page; `min_value`
keeps small absolute values quiet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from watchtower.alerting.model import RuleResult
from watchtower.collectors.base import Reading
from watchtower.config.models import Duration
from watchtower.rules.base import SeriesRule, fmt_duration, top_offenders
from watchtower.rules.series import aggregate, select


class GrowthRule(SeriesRule):
    DEFAULT_SUMMARY = "{rule}: grew {value:.2f}x (from {baseline:.6g} to {latest:.6g}) within {window} for {labels}"
    EXTRAS = {"baseline": 1.0, "latest": 2.0, "window": "10m"}

    kind: Literal["growth"] = "growth"
    factor: float = Field(gt=1)
    window: Duration = Field(gt=0)
    floor: float = Field(1.0, gt=0)
    min_value: float = 0.0

    def evaluate(self, history: Sequence[Reading], now: float) -> list[RuleResult]:
        sel = select(history, self.selector, now, since=now - self.window)
        if sel.latest is None or not sel.series:
            return [self.no_data()]
        current = aggregate(sel.current(), self.aggregate, self.by)
        out: list[RuleResult] = []
        for key in sorted(current):
            points = current[key]
            if len(points) < 2:
                out.append(self.no_data(key))  # a new series: nothing to compare with yet
                continue
            latest, members = points[-1][1], points[-1][2]
            baseline = max(min(v for _, v, _ in points), self.floor)
            ratio = latest / baseline
            out.append(
                self.result(
                    key,
                    breaching=ratio >= self.factor and latest >= self.min_value,
                    value=ratio,
                    bound=self.factor,
                    offenders=top_offenders(members, True),
                    baseline=baseline,
                    latest=latest,
                    window=fmt_duration(self.window),
                )
            )
        for key in sorted(set(aggregate(sel.series, self.aggregate, self.by)) - set(current)):
            out.append(self.no_data(key))
        return out

