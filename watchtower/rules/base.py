"""What a rule is: a small Protocol, and the typed base every rule kind's config model builds on.

A rule kind is a frozen pydantic model (its YAML fields) with one method, `evaluate(history, now)`. The
model validates at load time; evaluation is a pure function of the history and `now`.
"""

from __future__ import annotations

import operator
import string
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from watchtower.alerting.model import Offender, RuleResult, Severity
from watchtower.core.types import Labels, Reading
from watchtower.core.units import Duration
from watchtower.rules.selector import SelectorField
from watchtower.rules.series import Aggregate


@runtime_checkable
class Rule(Protocol):
    """One alert rule.

    `evaluate(history, now)` is pure: no I/O, no clock, no randomness; it must not block. It returns one
    RuleResult per label set it has an opinion on (breaching or not). A label set it leaves out counts as
    not breaching, so a series that disappears resolves. It should not raise on odd data (gaps, resets,
    one sample); the daemon still isolates a rule that does, and keeps that rule's alerts as they were.
    """

    name: str
    kind: str

    def evaluate(self, history: Sequence[Reading], now: float) -> list[RuleResult]: ...


class Op(str, Enum):
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    EQ = "=="
    NE = "!="

    def holds(self, value: float, bound: float) -> bool:
        return _OPS[self](value, bound)

    @property
    def rising(self) -> bool:
        """True when bigger values are worse (used to rank offenders and trends)."""
        return self not in (Op.LT, Op.LE)


_OPS = {
    Op.GT: operator.gt,
    Op.GE: operator.ge,
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
}


class _AnyLabels(dict[str, str]):
    """Label lookup for templates: a label the series lacks renders empty instead of failing."""

    def __missing__(self, key: str) -> str:
        return ""

    def __format__(self, spec: str) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.items()) or "-"


def render(template: str, fields: Mapping[str, Any]) -> str | None:
    """str.format the template; None when the values do not fit it (e.g. `{value:.0f}` with no value)."""
    try:
        return template.format_map(fields)
    except (KeyError, IndexError, ValueError, TypeError, AttributeError):
        return None


class RuleBase(BaseModel):
    """Fields every rule has. Subclasses add their own fields, `EXTRAS` and `evaluate`."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # Template fields besides value, bound, labels and rule, with sample values used to check templates.
    EXTRAS: ClassVar[dict[str, Any]] = {}
    DEFAULT_SUMMARY: ClassVar[str] = "{rule}: {value} (bound {bound}) for {labels}"

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]+$")
    kind: str
    severity: Severity = Severity.TICKET
    for_: Duration = Field(0.0, alias="for", ge=0)
    keep_firing_for: Duration = Field(0.0, ge=0)
    summary: str = ""
    runbook: str = ""
    dashboard: str = ""
    route: str = "default"
    # Raise `<name>:no-data` when the selectors match nothing for `stale_after` (rules/no_data.py). Off for
    # rules whose metrics exist only in some deployments (Flink-only, scaling targets), where silence is normal.
    alert_on_no_data: bool = True

    @model_validator(mode="after")
    def _template_fits(self) -> RuleBase:
        if not self.summary:
            return self
        allowed = {"value", "bound", "labels", "rule", *self.EXTRAS}
        try:
            parsed = list(string.Formatter().parse(self.summary))
        except ValueError as exc:
            raise ValueError(
                f"summary is not a valid template ({exc}); escape literal braces as {{{{ and }}}}"
            ) from None
        for _, field, _, _ in parsed:
            if field is None:
                continue
            root = field.split(".")[0].split("[")[0]
            if root not in allowed:
                raise ValueError(
                    f"summary uses {{{field}}}, which this rule kind does not provide; use one of: {', '.join(sorted(allowed))}"
                )
        sample = {"value": 1.0, "bound": 1.0, "labels": _AnyLabels(), "rule": self.name, **self.EXTRAS}
        if render(self.summary, sample) is None:
            raise ValueError(
                "summary does not format with a number as value and bound; check format specs such as {value:.1f}"
            )
        return self

    def result(
        self,
        labels: Labels,
        *,
        breaching: bool,
        value: float | None,
        bound: float | None,
        severity: Severity | None = None,
        offenders: tuple[Offender, ...] = (),
        no_data: bool = False,
        **extras: Any,
    ) -> RuleResult:
        fields = {"value": value, "bound": bound, "labels": _AnyLabels(labels), "rule": self.name, **extras}
        if no_data:
            summary = f"{self.name}: no data for {_AnyLabels(labels):}"
        else:
            summary = (
                render(self.summary or self.DEFAULT_SUMMARY, fields)
                or render(RuleBase.DEFAULT_SUMMARY, fields)
                or self.name
            )
        return RuleResult(
            rule=self.name,
            labels=labels,
            breaching=breaching and not no_data,
            value=value,
            bound=bound,
            severity=severity or self.severity,
            summary=summary,
            runbook=self.runbook,
            dashboard=self.dashboard,
            offenders=offenders,
            no_data=no_data,
        )

    def no_data(self, labels: Labels = ()) -> RuleResult:
        return self.result(labels, breaching=False, value=None, bound=None, no_data=True)


class SeriesRule(RuleBase):
    """A rule over one selector, aggregated across series (or per group with `by`, or kept with `none`)."""

    selector: SelectorField
    aggregate: Aggregate = Aggregate.MAX
    by: tuple[str, ...] = ()

    @field_validator("by")
    @classmethod
    def _by_names(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for name in v:
            if not name.isidentifier():
                raise ValueError(f"{name!r} is not a label name; list label names such as [group, topic]")
        return v

    @model_validator(mode="after")
    def _by_needs_aggregate(self) -> SeriesRule:
        if self.by and self.aggregate is Aggregate.NONE:
            raise ValueError(
                "`by` groups series for an aggregate; set aggregate to max, min, sum or avg, or drop `by`"
            )
        return self


def top_offenders(
    labels: Callable[[int], Labels], values: np.ndarray, worst_first_desc: bool, n: int = 3
) -> tuple[Offender, ...]:
    """The n worst of the series behind an aggregate (`labels(i)`, `values[i]`); none when there is only one.

    Ties rank by labels. Only the candidates (values at least as bad as the n-th worst) get their labels
    looked up and sorted, so a group of 10,000 partitions costs one numpy partition.
    """
    if len(values) <= 1:
        return ()
    key = -values if worst_first_desc else values
    if len(key) > n:
        candidates = np.flatnonzero(key <= np.partition(key, n - 1)[n - 1])
    else:
        candidates = np.arange(len(key))
    ranked = sorted((float(key[i]), labels(int(i)), float(values[i])) for i in candidates)
    return tuple(Offender(lbl, v) for _, lbl, v in ranked[:n])


def fmt_duration(seconds: float) -> str:
    """30 -> '30s', 600 -> '10m', 86400 -> '1d': how durations read in summaries."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
