"""consumer_status: Burrow's sliding-window evaluation of a consumer group, from committed offsets and lag.

Per partition, checked in this order (the first that holds wins; with current lag 0 the partition is OK):

  STOP    the committed offset has not moved for longer than `stop_after` while lag stayed > 0
  REWIND  the committed offset went back within `window`
  STALL   the committed offset has not moved for at least `window` while lag stayed > 0
  WARN    lag stayed > 0 and never fell across `window` (and grew), with at least `min_points` samples
  OK      anything else; notably an idle topic (lag 0, offsets still) and a consumer that catches up

Offsets are sampled, not read from commit records, so "not moved" means the sampled offset stayed equal.
The clock for STOP and STALL starts at the later of the last offset move and the start of the current run of
lag > 0, so a topic that sat idle for hours does not look stopped when its first new message arrives.

Partitions roll up into `by` groups (default: per consumer group) with the worst status; the offenders are
the non-OK partitions with the most lag. A partition that disappears drops out; a new one joins as seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from pydantic import Field, field_validator

from watchtower.alerting.model import Offender, RuleResult, Severity
from watchtower.collectors.base import Labels, Reading
from watchtower.config.models import Duration
from watchtower.rules.base import RuleBase, fmt_duration
from watchtower.rules.selector import SelectorField, parse_selector
from watchtower.rules.series import Point, group_labels, select


class Status(str, Enum):
    OK = "OK"
    WARN = "WARN"
    REWIND = "REWIND"
    STALL = "STALL"
    STOP = "STOP"


RANK = {Status.OK: 0, Status.WARN: 1, Status.REWIND: 2, Status.STALL: 3, Status.STOP: 4}


@dataclass(frozen=True, slots=True)
class PartitionStatus:
    labels: Labels
    status: Status
    lag: float


def partition_status(
    offsets: Sequence[Point], lags: Sequence[Point], now: float, window: float, stop_after: float, min_points: int
) -> Status:
    """Burrow's partition rules over sampled (at, committed offset) and (at, lag) series, oldest first."""
    if not offsets or not lags or lags[-1][1] <= 0:
        return Status.OK
    stuck_since = _stuck_since(offsets, lags)
    if now - stuck_since > stop_after:
        return Status.STOP
    recent = [(at, v) for at, v in offsets if at >= now - window]
    if any(b < a for (_, a), (_, b) in zip(recent, recent[1:], strict=False)):
        return Status.REWIND
    if now - stuck_since >= window:
        return Status.STALL
    recent_lag = [v for at, v in lags if at >= now - window]
    if (
        len(recent_lag) >= min_points
        and all(v > 0 for v in recent_lag)
        and all(b >= a for a, b in zip(recent_lag, recent_lag[1:], strict=False))
        and recent_lag[-1] > recent_lag[0]
    ):
        return Status.WARN
    return Status.OK


def _stuck_since(offsets: Sequence[Point], lags: Sequence[Point]) -> float:
    """When the partition last made progress or last had nothing to do, whichever is later."""
    moved = offsets[0][0]
    for (_, a), (at, b) in zip(offsets, offsets[1:], strict=False):
        if b != a:
            moved = at
    busy_since = lags[0][0]
    for (_, a), (at, b) in zip(lags, lags[1:], strict=False):
        if a <= 0 < b:
            busy_since = at
    return max(moved, busy_since)


def _default_severities() -> dict[Status, Severity]:
    return {Status.STOP: Severity.PAGE, Status.STALL: Severity.PAGE, Status.REWIND: Severity.TICKET, Status.WARN: Severity.TICKET}


class ConsumerStatusRule(RuleBase):
    DEFAULT_SUMMARY = "{rule}: consumer {labels[group]} is {status} ({partitions}); lag {value:.0f} messages"
    EXTRAS = {"status": "STALL", "partitions": "orders/3 STALL", "window": "5m"}

    kind: Literal["consumer_status"] = "consumer_status"
    committed: SelectorField = parse_selector("watchtower_consumer_committed_offset")
    lag: SelectorField = parse_selector("watchtower_consumer_lag_messages")
    join_on: tuple[str, ...] = ("group", "topic", "partition")
    by: tuple[str, ...] = ("group",)
    window: Duration = Field(300.0, gt=0)
    stop_after: Duration = Field(900.0, gt=0)
    min_points: int = Field(3, ge=2)
    # Newest offsets older than this are no data: a collector that is down must not make partitions look STOPped.
    stale_after: Duration = Field(300.0, gt=0)
    # Which statuses alert, at which severity; a status left out never breaches.
    severities: dict[Status, Severity] = Field(default_factory=_default_severities)

    @field_validator("severities")
    @classmethod
    def _ok_never_alerts(cls, v: dict[Status, Severity]) -> dict[Status, Severity]:
        if Status.OK in v:
            raise ValueError("OK cannot alert; map only WARN, REWIND, STALL and STOP to a severity")
        return v

    def evaluate(self, history: Sequence[Reading], now: float) -> list[RuleResult]:
        since = now - max(self.window, self.stop_after) * 2
        selected = select(history, self.committed, now, since=since)
        if selected.latest is None or now - selected.latest > self.stale_after:
            return [self.no_data()]
        offsets = selected.current()
        lags = {group_labels(k, self.join_on): v for k, v in select(history, self.lag, now, since=since).current().items()}
        groups: dict[Labels, list[PartitionStatus]] = {}
        for labels, pts in sorted(offsets.items()):
            lag_pts = lags.get(group_labels(labels, self.join_on))
            if not lag_pts:
                continue  # no lag for this partition yet (no high watermark): Burrow treats it as fine
            status = partition_status(pts, lag_pts, now, self.window, self.stop_after, self.min_points)
            groups.setdefault(group_labels(labels, self.by), []).append(PartitionStatus(labels, status, lag_pts[-1][1]))
        if not groups:
            return [self.no_data()]
        return [self._rollup(key, parts) for key, parts in sorted(groups.items())]

    def _rollup(self, key: Labels, parts: list[PartitionStatus]) -> RuleResult:
        alerting = [p for p in parts if p.status in self.severities]
        worst = max(alerting, key=lambda p: RANK[p.status]).status if alerting else Status.OK
        bad = sorted(alerting, key=lambda p: (-RANK[p.status], -p.lag, p.labels))
        described = ", ".join(f"{_short(p.labels)} {p.status.value}" for p in bad[:5]) or "all partitions OK"
        return self.result(
            key,
            breaching=worst is not Status.OK,
            value=sum(p.lag for p in parts),
            bound=None,
            severity=self.severities.get(worst, self.severity),
            offenders=tuple(Offender(p.labels, p.lag) for p in bad[:5]),
            status=worst.value,
            partitions=described,
            window=fmt_duration(self.window),
        )


def _short(labels: Labels) -> str:
    d = dict(labels)
    return f"{d.get('topic', '?')}/{d.get('partition', '?')}" if "partition" in d else ",".join(f"{k}={v}" for k, v in labels)
