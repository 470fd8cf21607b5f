"""The detection verdict: did watchtower page exactly what a scenario expects, within how long? Pure.

From the pages the local receiver got during the run (`pager.Page`) and the scenario's `expect.alerts`:
each expected rule must page FIRING within `within` seconds of the fault start, and (when asked) page
RESOLVED within `resolve_within` seconds of the method's end. A FIRING page of any other rule, unless
tolerated, is a false positive.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from watchtower.chaos.pager import Page
from watchtower.chaos.scenario import AlertExpectation


@dataclass
class AlertVerdict:
    rule: str
    fired_after: float | None  # seconds from the fault start to the first FIRING page
    resolved_after: float | None  # seconds from the method end to the RESOLVED page
    within: float
    resolve_within: float | None

    @property
    def ok(self) -> bool:
        fired = self.fired_after is not None and self.fired_after <= self.within
        if self.resolve_within is None:
            return fired
        return fired and self.resolved_after is not None and self.resolved_after <= self.resolve_within


@dataclass
class Detection:
    alerts: list[AlertVerdict] = field(default_factory=list)
    false_positives: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(a.ok for a in self.alerts) and not self.false_positives

    def summary(self) -> str:
        parts = []
        for a in self.alerts:
            fired = (
                "never paged"
                if a.fired_after is None
                else f"paged after {a.fired_after:.1f}s (limit {a.within:.0f}s)"
            )
            res = ""
            if a.resolve_within is not None:
                res = (
                    ", never resolved"
                    if a.resolved_after is None
                    else f", resolved {a.resolved_after:.1f}s after the method"
                )
            parts.append(f"{a.rule}: {fired}{res}{'' if a.ok else ' FAIL'}")
        if self.false_positives:
            parts.append(f"false positives: {', '.join(sorted(set(self.false_positives)))}")
        return "; ".join(parts) or "no alerts expected, none paged"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "alerts": [{**a.__dict__, "ok": a.ok} for a in self.alerts],
            "false_positives": sorted(set(self.false_positives)),
            "summary": self.summary(),
        }


def judge_detection(
    pages: Iterable[Page],
    expected: Sequence[AlertExpectation],
    fault_start: float,
    method_end: float,
    tolerate: Iterable[str] = (),
) -> Detection:
    pages = sorted(pages, key=lambda p: p.at)
    out = Detection()
    for e in expected:
        fired = next(
            (
                p.at - fault_start
                for p in pages
                if p.rule == e.rule and p.state == "firing" and p.at >= fault_start
            ),
            None,
        )
        resolved = None
        if e.resolve_within is not None:
            resolved = next(
                (
                    max(0.0, p.at - method_end)
                    for p in pages
                    if p.rule == e.rule and p.state == "resolved" and p.at >= fault_start
                ),
                None,
            )
        out.alerts.append(AlertVerdict(e.rule, fired, resolved, e.within, e.resolve_within))
    allowed = {e.rule for e in expected} | set(tolerate)
    out.false_positives = [p.rule for p in pages if p.state == "firing" and p.rule not in allowed]
    return out
