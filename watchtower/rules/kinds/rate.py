"""rate: the per-minute increase of a counter over `window`, compared with a bound.

The rate is taken per series first (a drop is a counter reset, as in Prometheus) and then aggregated
(`sum` by default), so a restarted producer neither hides nor fakes growth. A series with fewer than two
samples in the window has no rate yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field

from watchtower.alerting.model import RuleResult
from watchtower.core.types import Reading
from watchtower.core.units import Duration
from watchtower.rules.base import Op, SeriesRule, fmt_duration, top_offenders
from watchtower.rules.series import Aggregate, combine, rates, split_by, window


class RateRule(SeriesRule):
    DEFAULT_SUMMARY = "{rule}: {value:.6g}/min over {window} {op} {bound:.6g} for {labels}"
    EXTRAS = {"window": "5m", "op": ">"}

    kind: Literal["rate"] = "rate"
    aggregate: Aggregate = Aggregate.SUM
    op: Op = Op.GT
    bound: float  # per minute
    window: Duration = Field(gt=0)

    def evaluate(self, history: Sequence[Reading], now: float) -> list[RuleResult]:
        w = window(history, self.selector, now, since=now - self.window)
        if w.empty:
            return [self.no_data()]
        current = w.take(w.current())
        per_series, has_rate = rates(current, unit=60.0)
        rated, values = current.take(has_rate), per_series[has_rate]
        codes, keys = rated.groups(self.aggregate, self.by)
        how = Aggregate.MAX if self.aggregate is Aggregate.NONE else self.aggregate
        combined, _ = combine(values[None, :], np.ones((1, values.size), dtype=bool), codes, len(keys), how)
        members = split_by(codes)
        out: list[RuleResult] = []
        for i in sorted(range(len(keys)), key=keys.__getitem__):
            value = float(combined[0, i])
            m = members[i]
            out.append(
                self.result(
                    keys[i],
                    breaching=self.op.holds(value, self.bound),
                    value=value,
                    bound=self.bound,
                    offenders=top_offenders(lambda j, m=m: rated.labels(m[j]), values[m], self.op.rising),
                    window=fmt_duration(self.window),
                    op=self.op.value,
                )
            )
        # Groups seen in the window without a rate (gone, or only one sample so far): no data, not breaching.
        seen = w.groups(self.aggregate, self.by)[1]
        out.extend(self.no_data(key) for key in sorted(set(seen) - set(keys)))
        return out
