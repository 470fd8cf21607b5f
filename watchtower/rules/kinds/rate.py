"""rate: the per-minute increase of a counter over `window`, compared with a bound.

The rate is taken per series first (a drop is a counter reset, as in Prometheus) and then aggregated
(`sum` by default), so a restarted producer neither hides nor fakes growth. A series with fewer than two
samples in the window has no rate yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from watchtower.alerting.model import RuleResult
from watchtower.collectors.base import Reading
from watchtower.config.models import Duration
from watchtower.rules.base import Op, SeriesRule, fmt_duration, top_offenders
from watchtower.rules.series import Aggregate, group_labels, group_values, in_window, rate, select


class RateRule(SeriesRule):
    DEFAULT_SUMMARY = "{rule}: {value:.6g}/min over {window} {op} {bound:.6g} for {labels}"
    EXTRAS = {"window": "5m", "op": ">"}

    kind: Literal["rate"] = "rate"
    aggregate: Aggregate = Aggregate.SUM
    op: Op = Op.GT
    bound: float  # per minute
    window: Duration = Field(gt=0)

    def evaluate(self, history: Sequence[Reading], now: float) -> list[RuleResult]:
        sel = select(history, self.selector, now, since=now - self.window)
        if sel.latest is None or not sel.series:
            return [self.no_data()]
        rates: dict = {}
        for labels, points in sel.current().items():
            r = rate(in_window(points, now - self.window, now), unit=60.0)
            if r is not None:
                rates[labels] = r
        grouped = group_values(rates, self.aggregate, self.by)
        out: list[RuleResult] = []
        for key in sorted(grouped):
            value, members = grouped[key]
            out.append(
                self.result(
                    key,
                    breaching=self.op.holds(value, self.bound),
                    value=value,
                    bound=self.bound,
                    offenders=top_offenders(members, self.op.rising),
                    window=fmt_duration(self.window),
                    op=self.op.value,
                )
            )
        # Groups seen in the window without a rate (gone, or only one sample so far): no data, not breaching.
        seen = {group_labels(k, self.by) if self.aggregate is not Aggregate.NONE else k for k in sel.series}
        out.extend(self.no_data(key) for key in sorted(seen - set(grouped)))
        return out
