"""Which lag-in-seconds value a partition reports this cycle, and when there is none. Pure.

The rule: an unknown age is never reported as 0 (the healthiest value there is). In order:

* no lag: 0 (nothing is waiting);
* the record's timestamp was read: its age (`timestamp`);
* the committed offset lies inside the (watermark, wall time) table: interpolated (`interpolation`);
* it lies before the table (a group or partition the daemon has just started watching, or the daemon
  has just started), so interpolation only knows a lower bound:
  - the probe was asked for the record's timestamp this cycle and has not read it yet: **no sample**
    (`pending`); the collector waits for such reads within the cycle (`timestamp_wait`), so this only
    happens when the broker is slow;
  - timestamps are not read for it (method `interpolation`, or `auto` above `timestamp_max_partitions`,
    or the record has none): the lower bound `now - first observation`, only when it is above 0
    (`lower_bound`; counted per group and topic on `watchtower_consumer_lag_seconds_lower_bounds` and in
    /api/v1/status); a bound of 0 says nothing, so no sample (`unknown`).
"""

from __future__ import annotations

from watchtower.collectors.kafka_lag.seconds import (
    OffsetTable,
    lag_seconds_from_timestamp,
    produce_time,
)

NOT_READ: object = object()  # the record's timestamp has not been read (None: read, it has none)


def lag_seconds_estimate(
    *,
    lag: int,
    committed: int,
    table: OffsetTable,
    now: float,
    timestamp: float | None | object = NOT_READ,
    probing: bool = False,
) -> tuple[float | None, str]:
    """(seconds or None for no sample, method). `timestamp`: the record's, if read (None: it has none);
    `probing`: the probe was asked for it this cycle."""
    if lag <= 0:
        return 0.0, "none"
    if timestamp is not NOT_READ:
        seconds = lag_seconds_from_timestamp(timestamp, now, lag)  # type: ignore[arg-type]
        if seconds is not None:
            return seconds, "timestamp"
    estimate = produce_time(table, committed)
    if estimate is None:
        return None, "unknown"
    at, bounded = estimate
    if bounded:
        return max(0.0, now - at), "interpolation"
    if probing and timestamp is NOT_READ:
        return None, "pending"
    bound = now - at
    return (bound, "lower_bound") if bound > 0 else (None, "unknown")


def is_unbounded(table: OffsetTable, committed: int) -> bool:
    """Whether interpolation only has a lower bound (or nothing) for this committed offset: the cycle
    should wait for the record's timestamp rather than report nothing."""
    estimate = produce_time(table, committed)
    return estimate is None or not estimate[1]
