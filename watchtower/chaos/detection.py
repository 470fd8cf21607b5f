"""The detection verdict: did watchtower page exactly what a scenario expects, within how long? Pure.

Judged as an on-call would see it, from two sources: the pages the local receiver got during the run
(`pager.Page`) and what the daemon's `GET /api/v1/alerts` answered while the run looked (`AlertsSeen`).
Each expected rule must page FIRING within `within` seconds of the fault start and show as firing in
/api/v1/alerts, and (when asked) page RESOLVED within `resolve_within` seconds of the method's end and no
longer show as firing after that; with `pages: N` it must page FIRING (and RESOLVED) exactly N times. A
FIRING page of any other rule, or another rule firing in /api/v1/alerts, unless tolerated, is a false
positive. A double page (the same message delivered twice, or a FIRING for an alert whose incident is still
open) fails the verdict whatever the scenario expects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from watchtower.chaos.pager import Page
from watchtower.chaos.scenario import AlertExpectation


@dataclass(frozen=True, slots=True)
class AlertsSeen:
    """One look at the daemon's /api/v1/alerts: the rules firing then (`reachable` False: no answer)."""

    at: float
    firing: frozenset[str]
    reachable: bool = True


@dataclass
class AlertVerdict:
    rule: str
    fired_after: float | None  # seconds from the fault start to the first FIRING page
    resolved_after: float | None  # seconds from the method end to the RESOLVED page
    within: float
    resolve_within: float | None
    pages: int = 0  # FIRING messages naming the rule (distinct idempotency keys)
    resolves: int = 0  # RESOLVED messages naming the rule
    expected_pages: int | None = None
    seen_firing: bool | None = None  # in /api/v1/alerts after the fault start; None: not looked
    seen_cleared: bool | None = None  # not firing there after its RESOLVED page; None: not asked

    @property
    def ok(self) -> bool:
        fired = self.fired_after is not None and self.fired_after <= self.within
        counted = self.expected_pages is None or (
            self.pages == self.expected_pages
            and (self.resolve_within is None or self.resolves == self.expected_pages)
        )
        seen = self.seen_firing is not False and self.seen_cleared is not False
        if self.resolve_within is None:
            return fired and counted and seen
        resolved = self.resolved_after is not None and self.resolved_after <= self.resolve_within
        return fired and resolved and counted and seen


@dataclass
class Detection:
    alerts: list[AlertVerdict] = field(default_factory=list)
    false_positives: list[str] = field(default_factory=list)
    double_pages: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(a.ok for a in self.alerts) and not self.false_positives and not self.double_pages

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
            if a.expected_pages is not None:
                res += f", {a.pages} page(s) and {a.resolves} resolve(s) (expected {a.expected_pages})"
            if a.seen_firing is False:
                res += ", never firing in /api/v1/alerts"
            if a.seen_cleared is False:
                res += ", still firing in /api/v1/alerts after its resolve"
            parts.append(f"{a.rule}: {fired}{res}{'' if a.ok else ' FAIL'}")
        if self.false_positives:
            parts.append(f"false positives: {', '.join(sorted(set(self.false_positives)))}")
        if self.double_pages:
            parts.append(f"double pages: {'; '.join(self.double_pages[:5])}")
        return "; ".join(parts) or "no alerts expected, none paged"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "alerts": [{**a.__dict__, "ok": a.ok} for a in self.alerts],
            "false_positives": sorted(set(self.false_positives)),
            "double_pages": self.double_pages,
            "summary": self.summary(),
        }


def double_pages(pages: Iterable[Page]) -> list[str]:
    """The pages an on-call got twice, named: the same message delivered again (same idempotency key; a
    retry after a lost answer, or an outbox replayed after a crash) and a FIRING for an alert whose incident
    is still open (no RESOLVED since its FIRING: the incident state was lost). A FIRING after a RESOLVED is a
    new incident, not counted here (`expect.alerts[].pages` bounds those). Pure."""
    out: list[str] = []
    delivered: set[tuple[str, str, str]] = set()
    open_: set[tuple[str, str]] = set()
    for p in sorted(pages, key=lambda p: p.at):
        alert = (p.rule, p.fingerprint)
        if p.idempotency_key:
            if (p.idempotency_key, *alert) in delivered:
                out.append(f"{p.rule}: {p.kind} message {p.idempotency_key} delivered again")
                continue
            delivered.add((p.idempotency_key, *alert))
        if p.kind == "firing":
            if alert in open_:
                out.append(f"{p.rule}: FIRING {p.idempotency_key} while its incident was open")
            open_.add(alert)
        elif p.kind == "resolved" or p.state == "resolved":
            open_.discard(alert)
    return out


def judge_detection(
    pages: Iterable[Page],
    expected: Sequence[AlertExpectation],
    fault_start: float,
    method_end: float,
    tolerate: Iterable[str] = (),
    seen: Sequence[AlertsSeen] | None = None,
) -> Detection:
    """`seen`: the /api/v1/alerts answers of the run in time order, or None not to judge from them."""
    pages = sorted(pages, key=lambda p: p.at)
    out = Detection()
    looks = [s for s in seen or () if s.reachable]
    before = next((s.firing for s in reversed(looks) if s.at < fault_start), frozenset())
    during = [s for s in looks if s.at >= fault_start]
    for e in expected:
        mine = [p for p in pages if p.rule == e.rule and p.at >= fault_start]
        fired = next((p.at - fault_start for p in mine if p.state == "firing"), None)
        resolved_page = next((p for p in mine if p.state == "resolved"), None)
        resolved = None
        if e.resolve_within is not None and resolved_page is not None:
            resolved = max(0.0, resolved_page.at - method_end)
        v = AlertVerdict(
            e.rule,
            fired,
            resolved,
            e.within,
            e.resolve_within,
            pages=len({p.idempotency_key for p in mine if p.kind == "firing"}),
            resolves=len({p.idempotency_key for p in mine if p.kind == "resolved"}),
            expected_pages=e.pages,
        )
        if seen is not None:
            v.seen_firing = any(e.rule in s.firing for s in during)
            if e.resolve_within is not None and resolved_page is not None:
                v.seen_cleared = any(e.rule not in s.firing for s in during if s.at >= resolved_page.at)
        out.alerts.append(v)
    allowed = {e.rule for e in expected} | set(tolerate)
    out.false_positives = [p.rule for p in pages if p.state == "firing" and p.rule not in allowed]
    out.false_positives += sorted(
        {f"{r} (in /api/v1/alerts)" for s in during for r in s.firing - allowed - before}
    )
    out.double_pages = double_pages(pages)
    return out
