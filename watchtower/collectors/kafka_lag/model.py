"""The arithmetic of consumer lag: rates, time to drain and statuses. Pure functions of data and `now`.

The Kafka lag collector feeds these with what it read; tests feed them tables of cases.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from enum import StrEnum

Point = tuple[float, float]  # (wall time, value)


def clamp_lag(hwm: int, committed: int) -> tuple[int, bool]:
    """Lag in messages, never negative; the flag says the inputs were inconsistent (committed > hwm)."""
    lag = hwm - committed
    return (lag, False) if lag >= 0 else (0, True)


def windowed_rate(points: Sequence[Point], now: float, window: float) -> float | None:
    """Per-second rate of a monotonic total over the last `window` seconds.

    `points` are (time, total) ordered by time; the newest is the current cycle. The rate spans from the
    oldest point inside the window (or the newest point before it, so two cycles always give a rate) to the
    newest. None when there are fewer than two points or the total went backwards (offsets reset, topic
    recreated), because no honest rate exists then.
    """
    if len(points) < 2:
        return None
    t1, v1 = points[-1]
    start = now - window
    base = points[0]
    for p in points[:-1]:
        if p[0] <= start:
            base = p  # newest point at or before the window start
        else:
            break
    t0, v0 = base
    if t1 <= t0 or v1 < v0:
        return None
    return (v1 - v0) / (t1 - t0)


def trim_points(points: Sequence[Point], now: float, window: float) -> list[Point]:
    """Keep what `windowed_rate` may still need: the points in the window and the newest one before it."""
    # Points are ordered by time: a bisection, not a scan (the collector trims one list per group and topic
    # every cycle, and a 60 s window at a 1 s interval holds 60 points).
    keep_from = max(0, bisect_right(points, now - window, key=_time) - 1)
    return list(points[keep_from:])


def _time(point: Point) -> float:
    return point[0]


def time_to_drain(lag: int, consume_rate: float | None, produce_rate: float | None) -> float | None:
    """Seconds until the lag is gone at current rates: lag / (consume - produce).

    0 when nothing is waiting, +Inf when the lag is not shrinking, None when the rates are not known yet.
    """
    if lag <= 0:
        return 0.0
    if consume_rate is None or produce_rate is None:
        return None
    net = consume_rate - produce_rate
    return lag / net if net > 0 else math.inf


class Status(StrEnum):
    """A group's (or partition's) status, listed from least to most severe."""

    IDLE = "idle"  # nothing waiting and nothing new arriving
    OK = "ok"  # nothing waiting, or the group is keeping up
    LAGGING = "lagging"  # the group consumes but the lag grows
    STUCK = "stuck"  # lag > 0 and the committed offset has not moved for `stall_after`


SEVERITY = {s: i for i, s in enumerate(Status)}


def partition_status(
    lag: int,
    now: float,
    committed_changed_at: float,
    hwm_changed_at: float,
    stall_after: float,
    idle_after: float,
) -> Status:
    """Idle topic versus stuck consumer: both show a still committed offset, only the lag tells them apart."""
    if lag <= 0:
        return Status.IDLE if now - hwm_changed_at >= idle_after else Status.OK
    if now - committed_changed_at >= stall_after:
        return Status.STUCK
    return Status.OK


def group_status(
    partition_statuses: Iterable[Status], net_drain_rates: Iterable[float | None], lag: int
) -> Status:
    """The worst partition status; LAGGING when nothing is stuck but the lag grows on some topic.

    `net_drain_rates` are consume - produce per topic of the group (None when unknown). A group with no
    partitions is IDLE.
    """
    statuses = list(partition_statuses)
    if not statuses:
        return Status.IDLE
    worst = max(statuses, key=SEVERITY.__getitem__)
    if worst is Status.STUCK:
        return worst
    if lag > 0 and any(r is not None and r < 0 for r in net_drain_rates):
        return Status.LAGGING
    return worst


def group_retained(inactive_since: float | None, now: float, retention: float) -> bool:
    """Whether a group without members is still reported: until `retention` seconds after it went empty."""
    return inactive_since is None or now - inactive_since <= retention
