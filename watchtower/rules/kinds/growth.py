"""growth: the newest value is at least `factor` times the lowest value seen within `window`.

The early warning before a 10x blow-up: lag doubling in ten minutes says more than any fixed bound. The
baseline is never below `floor`, so growth from zero or from a handful of messages does not page; `min_value`
keeps small absolute values quiet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field

from watchtower.alerting.model import RuleResult
from watchtower.core.types import Reading
from watchtower.core.units import Duration
from watchtower.rules.base import SeriesRule, fmt_duration, top_offenders
from watchtower.rules.series import grouped, window


class GrowthRule(SeriesRule):
    DEFAULT_SUMMARY = (
        "{rule}: grew {value:.2f}x (from {baseline:.6g} to {latest:.6g}) within {window} for {labels}"
    )
    EXTRAS = {"baseline": 1.0, "latest": 2.0, "window": "10m"}

    kind: Literal["growth"] = "growth"
    factor: float = Field(gt=1)
    window: Duration = Field(gt=0)
    floor: float = Field(1.0, gt=0)
    min_value: float = 0.0

    def evaluate(self, history: Sequence[Reading], now: float) -> list[RuleResult]:
        w = window(history, self.selector, now, since=now - self.window)
        if w.empty:
            return [self.no_data()]
        g = grouped(w, self.aggregate, self.by)
        points = g.present.sum(axis=0)
        lowest = np.where(g.present, g.values, np.inf).min(axis=0)
        out: list[RuleResult] = []
        for i, key in enumerate(g.keys):
            if points[i] < 2:
                out.append(self.no_data(key))  # a new series: nothing to compare with yet
                continue
            latest = float(g.values[-1, i])
            baseline = max(float(lowest[i]), self.floor)
            ratio = latest / baseline
            members = g.members[i]
            out.append(
                self.result(
                    key,
                    breaching=ratio >= self.factor and latest >= self.min_value,
                    value=ratio,
                    bound=self.factor,
                    offenders=top_offenders(lambda j, m=members: w.labels(m[j]), w.values[-1, members], True),
                    baseline=baseline,
                    latest=latest,
                    window=fmt_duration(self.window),
                )
            )
        out.extend(self.no_data(key) for key in g.gone)
        return out
