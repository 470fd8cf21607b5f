"""threshold: the newest value of a series (or an aggregate of series) compared with a fixed bound.

`for` (how long it must hold before firing) is applied by the alert lifecycle, not here, so the rule stays a
function of the newest data. A value older than `stale_after` is no data, never a breach.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from watchtower.alerting.model import RuleResult
from watchtower.core.types import Reading
from watchtower.core.units import Duration
from watchtower.rules.base import Op, SeriesRule, top_offenders
from watchtower.rules.series import grouped, window


class ThresholdRule(SeriesRule):
    DEFAULT_SUMMARY = "{rule}: {value:.6g} {op} {bound:.6g} for {labels}"
    EXTRAS = {"op": ">"}

    kind: Literal["threshold"] = "threshold"
    op: Op = Op.GT
    bound: float
    stale_after: Duration = Field(300.0, gt=0)

    def evaluate(self, history: Sequence[Reading], now: float) -> list[RuleResult]:
        w = window(history, self.selector, now, since=now - self.stale_after)
        if w.empty:
            return [self.no_data()]
        g = grouped(w, self.aggregate, self.by)
        out: list[RuleResult] = []
        for i, key in enumerate(g.keys):
            value = float(g.values[-1, i])
            members = g.members[i]
            out.append(
                self.result(
                    key,
                    breaching=self.op.holds(value, self.bound),
                    value=value,
                    bound=self.bound,
                    offenders=top_offenders(
                        lambda j, m=members: w.labels(m[j]), w.values[-1, members], self.op.rising
                    ),
                    op=self.op.value,
                )
            )
        # Groups seen recently but absent from the newest reading (a partition that went away): resolve them.
        out.extend(self.no_data(key) for key in g.gone)
        return out
