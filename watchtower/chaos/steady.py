"""Steady-state probes on the daemon's latest readings. Pure: readings in, verdict out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from watchtower.chaos.scenario import Probe
from watchtower.core.types import Reading
from watchtower.rules.selector import parse_selector


@dataclass(frozen=True)
class ProbeResult:
    name: str
    value: float | None
    holds: bool

    def describe(self) -> str:
        v = "no data" if self.value is None else f"{self.value:.6g}"
        return f"{self.name}={v} {'ok' if self.holds else 'OUT OF TOLERANCE'}"


def probe(p: Probe, readings: Iterable[Reading]) -> ProbeResult:
    sel = parse_selector(p.metric)
    values = [v for r in readings for _, v in sel.samples(r)]
    if not values:
        return ProbeResult(p.name, None, p.missing_ok)
    if p.aggregate == "max":
        v = max(values)
    elif p.aggregate == "min":
        v = min(values)
    elif p.aggregate == "sum":
        v = sum(values)
    else:
        v = sum(values) / len(values)
    holds = (p.min is None or v >= p.min) and (p.max is None or v <= p.max)
    return ProbeResult(p.name, v, holds)


def steady(probes: Sequence[Probe], readings: Iterable[Reading]) -> list[ProbeResult]:
    readings = list(readings)
    return [probe(p, readings) for p in probes]
