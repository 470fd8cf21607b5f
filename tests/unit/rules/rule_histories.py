"""Synthetic histories for rule tests: plain builders, no fixtures, no clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from watchtower.alerting.model import RuleResult
from watchtower.core.types import Labels, Reading, Sample, labels

T0 = 1_700_000_000.0
LAG = "watchtower_consumer_lag_messages"


def table(
    metric: str,
    columns: Mapping[str, Sequence[float | None]],
    *,
    step: float = 60.0,
    start: float = T0,
    label: str = "partition",
    **fixed: str,
) -> list[Reading]:
    """One reading per row: column name -> value of series `{label=name, **fixed}`; None: series absent.

    A row where every column is None is a gap: no reading at all.
    """
    rows = max(len(v) for v in columns.values())
    out = []
    for i in range(rows):
        samples = tuple(
            Sample(metric, labels(**fixed, **{label: name}), float(v[i]))
            for name, v in columns.items()
            if i < len(v) and v[i] is not None
        )
        if samples:
            out.append(Reading("test", start + i * step, samples))
    return out


def merge(*histories: Sequence[Reading]) -> list[Reading]:
    """Several metrics in one history: readings at the same instant are combined."""
    by_time: dict[float, list[Sample]] = {}
    for h in histories:
        for r in h:
            by_time.setdefault(r.at, []).extend(r.samples)
    return [Reading("test", at, tuple(s)) for at, s in sorted(by_time.items())]


def counters(
    rate: Callable[[float], Mapping[str, float]],
    *,
    until: float,
    step: float = 60.0,
    start: float = T0,
    **fixed: str,
) -> list[Reading]:
    """Counters integrated from per-second rates: `rate(t)` -> {metric: events per second} for (t - step, t]."""
    totals: dict[str, float] = {}
    out = []
    t = start
    while t <= until:
        if t > start:
            for metric, r in rate(t).items():
                totals[metric] = totals.get(metric, 0.0) + r * step
        else:
            totals = {m: 0.0 for m in rate(t)}
        out.append(Reading("test", t, tuple(Sample(m, labels(**fixed), v) for m, v in totals.items())))
        t += step
    return out


def outcome(results: Sequence[RuleResult]) -> dict[Labels, tuple[bool, float | None, bool]]:
    """{labels: (breaching, value rounded, no_data)} — what the tables compare."""
    return {
        r.labels: (r.breaching, None if r.value is None else round(r.value, 6), r.no_data) for r in results
    }


def L(**kv: object) -> Labels:  # noqa: N802 - reads like the labels() it wraps
    return labels(**kv)
