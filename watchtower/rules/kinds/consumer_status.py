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

import numpy as np
from pydantic import Field, field_validator

from watchtower.alerting.model import Offender, RuleResult, Severity
from watchtower.core.types import Labels, Reading
from watchtower.core.units import Duration
from watchtower.rules.base import RuleBase, fmt_duration
from watchtower.rules.selector import SelectorField, parse_selector
from watchtower.rules.series import first_row, last_row, pairs, split_by, window

Point = tuple[float, float]


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


_BY_RANK = sorted(RANK, key=RANK.__getitem__)


def partition_status(
    offsets: Sequence[Point],
    lags: Sequence[Point],
    now: float,
    window: float,
    stop_after: float,
    min_points: int,
) -> Status:
    """Burrow's partition rules over sampled (at, committed offset) and (at, lag) series, oldest first."""
    if not offsets or not lags:
        return Status.OK
    o_times, o_values = np.array(offsets, dtype=float).T
    l_times, l_values = np.array(lags, dtype=float).T
    ranks = statuses(
        o_times, o_values[:, None], np.ones((len(offsets), 1), dtype=bool),
        l_times, l_values[:, None], np.ones((len(lags), 1), dtype=bool),
        now, window, stop_after, min_points,
    )  # fmt: skip
    return _BY_RANK[int(ranks[0])]


def statuses(
    o_times: np.ndarray,
    offsets: np.ndarray,
    o_present: np.ndarray,
    l_times: np.ndarray,
    lags: np.ndarray,
    l_present: np.ndarray,
    now: float,
    window: float,
    stop_after: float,
    min_points: int,
) -> np.ndarray:
    """`partition_status` of many partitions at once: column i of the offsets and of the lags is one partition.

    Each column has at least one sample of each; returns the RANK of every partition's status.
    """
    cutoff = now - window
    o_prev, o_before, o_moves = pairs(offsets, o_present)
    l_prev, l_before, l_steps = pairs(lags, l_present)
    # When the partition last made progress or last had nothing to do, whichever is later.
    changed = o_moves & (offsets != o_before)
    moved = np.where(changed.any(axis=0), o_times[last_row(changed)], o_times[first_row(o_present)])
    woke = l_steps & (l_before <= 0) & (lags > 0)
    busy_since = np.where(woke.any(axis=0), l_times[last_row(woke)], l_times[first_row(l_present)])
    stuck_for = now - np.maximum(moved, busy_since)
    lag_now = np.take_along_axis(lags, last_row(l_present)[None, :], axis=0)[0]
    # Pairs of consecutive samples both within the window.
    o_recent = o_moves & (o_times[np.maximum(o_prev, 0)] >= cutoff)
    rewound = (o_recent & (offsets < o_before)).any(axis=0)
    l_recent_rows = l_present & (l_times >= cutoff)[:, None]
    l_recent = l_steps & (l_times[np.maximum(l_prev, 0)] >= cutoff)
    first_recent = np.take_along_axis(lags, first_row(l_recent_rows)[None, :], axis=0)[0]
    warn = (
        (l_recent_rows.sum(axis=0) >= min_points)
        & ~(l_recent_rows & (lags <= 0)).any(axis=0)
        & ~(l_recent & (lags < l_before)).any(axis=0)
        & (lag_now > first_recent)
    )
    return np.select(
        [lag_now <= 0, stuck_for > stop_after, rewound, stuck_for >= window, warn],
        [RANK[Status.OK], RANK[Status.STOP], RANK[Status.REWIND], RANK[Status.STALL], RANK[Status.WARN]],
        RANK[Status.OK],
    )


def _default_severities() -> dict[Status, Severity]:
    return {
        Status.STOP: Severity.PAGE,
        Status.STALL: Severity.PAGE,
        Status.REWIND: Severity.TICKET,
        Status.WARN: Severity.TICKET,
    }


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
        committed = window(history, self.committed, now, since=since)
        if committed.latest is None or now - committed.latest > self.stale_after:
            return [self.no_data()]
        offsets = committed.take(committed.current())
        lag = window(history, self.lag, now, since=since)
        if offsets.cols.size == 0 or lag.empty:
            return [self.no_data()]
        lag = lag.take(lag.current())
        # Join on `join_on`; with two lag series for one partition the later one (in series order) counts.
        l_codes, l_keys = lag.series.groups(self.join_on)  # type: ignore[union-attr]
        lag_of = {l_keys[c]: j for j, c in enumerate(l_codes[lag.cols].tolist())}
        o_codes, o_keys = offsets.series.groups(self.join_on)  # type: ignore[union-attr]
        partner = np.array([lag_of.get(o_keys[c], -1) for c in o_codes[offsets.cols].tolist()], dtype=np.intp)
        # No lag for a partition yet (no high watermark): Burrow treats it as fine, it is left out.
        oi = np.flatnonzero(partner >= 0)
        if oi.size == 0:
            return [self.no_data()]
        oi = oi[np.argsort(offsets.series.label_order()[offsets.cols[oi]])]  # type: ignore[union-attr]
        lj = partner[oi]
        ranks = statuses(
            offsets.times, offsets.values[:, oi], offsets.present[:, oi],
            lag.times, lag.values[:, lj], lag.present[:, lj],
            now, self.window, self.stop_after, self.min_points,
        )  # fmt: skip
        lag_now = lag.values[-1, lj]
        g_codes, g_keys = offsets.series.groups(self.by)  # type: ignore[union-attr]
        used, local = np.unique(g_codes[offsets.cols[oi]], return_inverse=True)
        alerting = np.isin(ranks, [RANK[s] for s in self.severities])
        out = []
        for g, members in sorted(zip((g_keys[c] for c in used), split_by(local.reshape(-1)), strict=True)):
            bad = [
                PartitionStatus(offsets.labels(int(oi[m])), _BY_RANK[int(ranks[m])], float(lag_now[m]))
                for m in members[alerting[members]]
            ]
            out.append(self._rollup(g, bad, sum(lag_now[members].tolist())))
        return out

    def _rollup(self, key: Labels, alerting: list[PartitionStatus], total_lag: float) -> RuleResult:
        """One group: the worst alerting status of its partitions (alerting: those in `severities`)."""
        worst = max(alerting, key=lambda p: RANK[p.status]).status if alerting else Status.OK
        bad = sorted(alerting, key=lambda p: (-RANK[p.status], -p.lag, p.labels))
        described = ", ".join(f"{_short(p.labels)} {p.status.value}" for p in bad[:5]) or "all partitions OK"
        return self.result(
            key,
            breaching=worst is not Status.OK,
            value=total_lag,
            bound=None,
            severity=self.severities.get(worst, self.severity),
            offenders=tuple(Offender(p.labels, p.lag) for p in bad[:5]),
            status=worst.value,
            partitions=described,
            window=fmt_duration(self.window),
        )


def _short(labels: Labels) -> str:
    d = dict(labels)
    return (
        f"{d.get('topic', '?')}/{d.get('partition', '?')}"
        if "partition" in d
        else ",".join(f"{k}={v}" for k, v in labels)
    )
