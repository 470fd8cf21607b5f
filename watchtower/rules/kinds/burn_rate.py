"""burn_rate: multi-window, multi-burn-rate SLO alerting (Google SRE workbook, chapter 5).

The SLO is "`objective` of events are good" (e.g. 99% of events reach Redis within 5 s), measured by two
counters: `total` events and either `good` or `bad` events. Over a window,

    error_ratio = increase(bad) / increase(total)         (bad = total - good when `good` is given)
    burn        = error_ratio / (1 - objective)            (1.0 spends the budget exactly over the SLO period)

A window pair breaches when the burn over BOTH its long and its short window is above its factor: the long
window proves the burn is significant, the short one that it is still happening (so the alert resolves
quickly once fixed). Defaults: page at 14.4x over 1h and 5m or 6x over 6h and 30m; ticket at 3x over 1d and
2h or 1x over 3d and 6h. The most severe breaching pair sets the severity. A window without two samples of
the total counter is no data (never a breach); a window with no events burns nothing. Burn rates are
rounded to 1e-9 so that a burn exactly at the factor compares as equal (and does not breach).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from watchtower.alerting.model import RuleResult, Severity
from watchtower.core.types import Labels, Reading
from watchtower.core.units import Duration
from watchtower.rules.base import RuleBase, fmt_duration
from watchtower.rules.selector import Selector, SelectorField
from watchtower.rules.series import Aggregate, History, increase, window

_SEVERITY_ORDER = {Severity.PAGE: 0, Severity.TICKET: 1, Severity.INFO: 2}


class BurnWindow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    long: Duration = Field(gt=0)
    short: Duration = Field(gt=0)
    factor: float = Field(gt=0)
    severity: Severity

    @model_validator(mode="after")
    def _short_is_shorter(self) -> BurnWindow:
        if self.short >= self.long:
            raise ValueError("the short window must be shorter than the long one (e.g. long: 1h, short: 5m)")
        return self


DEFAULT_WINDOWS = (
    BurnWindow(long=3600, short=300, factor=14.4, severity=Severity.PAGE),
    BurnWindow(long=21600, short=1800, factor=6, severity=Severity.PAGE),
    BurnWindow(long=86400, short=7200, factor=3, severity=Severity.TICKET),
    BurnWindow(long=259200, short=21600, factor=1, severity=Severity.TICKET),
)


class BurnRateRule(RuleBase):
    DEFAULT_SUMMARY = (
        "{rule}: error budget burning {value:.1f}x over {long} and {burn_short:.1f}x over {short} "
        "(bound {bound:g}x, objective {objective:.2%}) for {labels}"
    )
    EXTRAS = {"long": "1h", "short": "5m", "burn_short": 1.0, "objective": 0.99}

    kind: Literal["burn_rate"] = "burn_rate"
    total: SelectorField
    good: SelectorField | None = None
    bad: SelectorField | None = None
    objective: float = Field(gt=0, lt=1)
    windows: tuple[BurnWindow, ...] = Field(DEFAULT_WINDOWS, min_length=1)
    by: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _good_or_bad(self) -> BurnRateRule:
        if (self.good is None) == (self.bad is None):
            raise ValueError(
                "give exactly one of `good` (events within the SLO) or `bad` (events outside it)"
            )
        return self

    def evaluate(self, history: Sequence[Reading], now: float) -> list[RuleResult]:
        since = now - max(w.long for w in self.windows)
        total = self._increases(history, self.total, now, since)
        counted = self._increases(history, self.good or self.bad, now, since)  # type: ignore[arg-type]
        keys = sorted({k for per_window in total.values() for k in per_window})
        if not keys:
            return [self.no_data()]
        pairs = sorted(self.windows, key=lambda w: (_SEVERITY_ORDER[w.severity], -w.factor))
        out: list[RuleResult] = []
        for key in keys:
            measured = [
                (w, self._burn(total, counted, w.long, key), self._burn(total, counted, w.short, key))
                for w in pairs
            ]
            with_data = [(w, lo, sh) for w, lo, sh in measured if lo is not None and sh is not None]
            if not with_data:
                out.append(self.no_data(key))
                continue
            hit = next(((w, lo, sh) for w, lo, sh in with_data if lo > w.factor and sh > w.factor), None)
            w, lo, sh = hit or with_data[0]
            out.append(
                self.result(
                    key,
                    breaching=hit is not None,
                    value=lo,
                    bound=w.factor,
                    severity=w.severity,
                    long=fmt_duration(w.long),
                    short=fmt_duration(w.short),
                    burn_short=sh,
                    objective=self.objective,
                )
            )
        return out

    def _increases(
        self, history: History, selector: Selector, now: float, since: float
    ) -> dict[float, dict[Labels, float]]:
        """Per window length: the counter increase per `by` group, only for groups with a measurable series."""
        lengths = {x for w in self.windows for x in (w.long, w.short)}
        w = window(history, selector, now, since=since)
        if w.empty:
            return {length: {} for length in lengths}
        codes, keys = w.groups(Aggregate.SUM, self.by)
        out: dict[float, dict[Labels, float]] = {}
        for length in lengths:
            part = w.since(now - length)
            measurable = part.present.sum(axis=0) >= 2
            sums = np.zeros(len(keys))
            np.add.at(
                sums, codes[measurable], increase(part.values[:, measurable], part.present[:, measurable])
            )
            has = np.bincount(codes[measurable], minlength=len(keys)) > 0
            out[length] = {keys[i]: float(sums[i]) for i in np.flatnonzero(has)}
        return out

    def _burn(
        self,
        total: dict[float, dict[Labels, float]],
        counted: dict[float, dict[Labels, float]],
        length: float,
        key: Labels,
    ) -> float | None:
        events = total[length].get(key)
        if events is None:
            return None
        if self.good is not None:
            good = counted[length].get(key)
            if good is None:
                return None
            bad = events - good
        else:
            bad = counted[length].get(
                key, 0.0
            )  # a bad-events counter that does not exist yet has counted nothing
        ratio = min(max(bad / events, 0.0), 1.0) if events > 0 else 0.0
        return round(ratio / (1 - self.objective), 9)
