"""Lag in seconds: how long the oldest unconsumed record of a partition has been waiting. Pure functions.

Two estimators (accuracy measured in docs/lag.md):

* `lag_seconds_from_timestamp`: the age of the record *at the committed offset* (the next one the group
  will read), from the record's own timestamp. Exact when timestamps are append times or honest create
  times; wrong by the replay distance when old records are re-produced with their original timestamps.
* `lag_seconds_interpolated`: when that offset reached the partition, estimated from a table of
  (high watermark, wall time) observations the collector records every cycle; linear between two
  observations. Costs no fetch, so it scales to any partition count; its error is bounded by the
  collection interval during which the offset arrived.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass


def lag_seconds_from_timestamp(record_ts: float | None, now: float, lag_messages: int) -> float | None:
    """`now - record_ts` (both epoch seconds), 0 when nothing is waiting, None when there is no timestamp.

    A timestamp in the future (producer clock ahead of ours) is clamped to 0 rather than reported negative.
    """
    if lag_messages <= 0:
        return 0.0
    if record_ts is None or record_ts <= 0:
        return None
    return max(0.0, now - record_ts)


@dataclass(frozen=True, slots=True)
class OffsetPoint:
    """The partition's high watermark was `hwm` from wall time `first_seen` until at least `last_seen`.

    So every offset below `hwm` was written at or before `first_seen`, and every offset at or above it
    was written after `last_seen`.
    """

    hwm: int
    first_seen: float
    last_seen: float


OffsetTable = tuple[OffsetPoint, ...]  # ordered by hwm (and time), strictly increasing hwm


def record_observation(table: OffsetTable, hwm: int, at: float, max_points: int) -> OffsetTable:
    """The table after observing `hwm` at wall time `at`; returns a new tuple (the old one is unchanged).

    An unchanged watermark only extends the last point's `last_seen`, so idle periods cost no points. A
    watermark lower than the last one means the partition was recreated: the table starts over. When the
    table is full the older half is thinned (every other point dropped), keeping the oldest point so the
    table's reach back in time does not shrink, only its resolution far back.
    """
    if table and hwm == table[-1].hwm:
        last = table[-1]
        return (*table[:-1], OffsetPoint(last.hwm, last.first_seen, max(last.last_seen, at)))
    if table and hwm < table[-1].hwm:
        return (OffsetPoint(hwm, at, at),)
    out = (*table, OffsetPoint(hwm, at, at))
    if len(out) > max_points:
        half = len(out) // 2
        older = out[:half]
        out = (older[0], *older[2::2], *out[half:])
    return out


def _hwm(point: OffsetPoint) -> int:
    return point.hwm


def produce_time(table: OffsetTable, offset: int) -> tuple[float, bool] | None:
    """Estimated wall time at which `offset` was appended, and whether it is exact-bounded.

    Returns (time, bounded): `bounded` is False when the offset is older than the table (then the time
    is the table's first observation, so the age is a lower bound). None when the offset is not yet
    below any observed watermark (it has not been written, as far as the table knows).
    """
    if not table:
        return None
    j = bisect_right(table, offset, key=_hwm)  # first point whose hwm > offset
    if j == len(table):
        return None
    if j == 0:
        return table[0].first_seen, False
    before, after = table[j - 1], table[j]
    # Offsets in [before.hwm, after.hwm) arrived in (before.last_seen, after.first_seen]: assume evenly.
    span = after.hwm - before.hwm
    fraction = (offset - before.hwm + 1) / span
    return before.last_seen + fraction * (after.first_seen - before.last_seen), True


def lag_seconds_interpolated(
    table: OffsetTable, committed: int, lag_messages: int, now: float
) -> float | None:
    """Age of the record at `committed` from the offset table; 0 when nothing is waiting."""
    if lag_messages <= 0:
        return 0.0
    estimate = produce_time(table, committed)
    if estimate is None:
        return None
    return max(0.0, now - estimate[0])
