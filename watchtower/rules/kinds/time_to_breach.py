"""time_to_breach: a least-squares line through `window` predicts the series crosses `threshold` within `horizon`.

Value is the predicted seconds until the crossing (0 when already past it), bound is the horizon. A flat or
receding trend never breaches. Fewer than `min_points` samples in the window is no data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from watchtower.alerting.model import RuleResult
from watchtower.core.types import Reading
from watchtower.core.units import Duration
from watchtower.rules.base import Op, SeriesRule, fmt_duration, top_offenders
from watchtower.rules.series import grouped, least_squares, window


class TimeToBreachRule(SeriesRule):
    DEFAULT_SUMMARY = (
        "{rule}: {labels} at {latest:.6g}, trend crosses {threshold:.6g} in {value:.0f}s (horizon {horizon})"
    )
    EXTRAS = {"threshold": 1.0, "latest": 1.0, "horizon": "15m", "slope": 1.0}

    kind: Literal["time_to_breach"] = "time_to_breach"
    op: Op = Op.GT
    threshold: float
    window: Duration = Field(gt=0)
    horizon: Duration = Field(gt=0)
    min_points: int = Field(3, ge=2)

    @field_validator("op")
    @classmethod
    def _directional(cls, v: Op) -> Op:
        if v in (Op.EQ, Op.NE):
            raise ValueError("a trend crosses a threshold going up or down: use >, >=, < or <=")
        return v

    def evaluate(self, history: Sequence[Reading], now: float) -> list[RuleResult]:
        w = window(history, self.selector, now, since=now - self.window)
        if w.empty:
            return [self.no_data()]
        g = grouped(w, self.aggregate, self.by)
        enough = g.present.sum(axis=0) >= self.min_points  # rows have distinct times: two points span time
        slopes, fitted = (
            least_squares(w.times, g.values[:, enough], g.present[:, enough]) if enough.any() else ((), ())
        )
        fits = dict(zip(np.flatnonzero(enough).tolist(), zip(slopes, fitted, strict=True), strict=True))
        out: list[RuleResult] = []
        for i, key in enumerate(g.keys):
            if i not in fits:
                out.append(self.no_data(key))
                continue
            latest = float(g.values[-1, i])
            slope, line = float(fits[i][0]), float(fits[i][1])
            eta = self._eta(latest, slope, line, now - float(w.times[-1]))
            members = g.members[i]
            out.append(
                self.result(
                    key,
                    breaching=eta is not None and eta <= self.horizon,
                    value=eta,
                    bound=self.horizon,
                    offenders=top_offenders(
                        lambda j, m=members: w.labels(m[j]), w.values[-1, members], self.op.rising
                    ),
                    threshold=self.threshold,
                    latest=latest,
                    horizon=fmt_duration(self.horizon),
                    slope=slope,
                )
            )
        out.extend(self.no_data(key) for key in g.gone)
        return out

    def _eta(self, latest: float, slope: float, fitted: float, since_last: float) -> float | None:
        """Seconds from now until the fitted line crosses the threshold; None if it never will.

        `fitted` is the line's value at the newest sample, `since_last` how long ago that sample was.
        Rounded to the microsecond so that a crossing exactly at the horizon compares as equal.
        """
        if self.op.holds(latest, self.threshold):
            return 0.0
        heading_there = slope > 0 if self.op.rising else slope < 0
        if not heading_there:
            return None
        return round(max(0.0, (self.threshold - fitted) / slope - since_last), 6)
