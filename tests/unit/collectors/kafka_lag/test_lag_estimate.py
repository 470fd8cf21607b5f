"""Which lag-in-seconds value a partition reports, and when none: an unknown age never reads as 0."""

from __future__ import annotations

import pytest

from watchtower.collectors.kafka_lag.estimate import NOT_READ, is_unbounded, lag_seconds_estimate
from watchtower.collectors.kafka_lag.seconds import OffsetPoint

NOW = 1_000.0
# watermark 100 first seen at 900 (the collector's first cycle), 150 seen at 950
TABLE = (OffsetPoint(100, 900.0, 940.0), OffsetPoint(150, 950.0, 990.0))
FRESH = (OffsetPoint(100, NOW, NOW),)  # the first cycle ever: one point, seen just now


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        # nothing waiting
        ({"lag": 0, "committed": 150, "table": TABLE}, (0.0, "none")),
        # the record's timestamp wins
        ({"lag": 10, "committed": 140, "table": TABLE, "timestamp": 700.0}, (300.0, "timestamp")),
        # inside the table: interpolated (offset 140 arrived between 940 and 950)
        ({"lag": 10, "committed": 140, "table": TABLE}, (pytest.approx(NOW - 948.2), "interpolation")),
        # a new group on old records, probe asked and not done: no sample, not 0
        ({"lag": 50, "committed": 50, "table": FRESH, "probing": True}, (None, "pending")),
        # ...once the probe has read it: the truth, right away
        (
            {"lag": 50, "committed": 50, "table": FRESH, "probing": True, "timestamp": 700.0},
            (300.0, "timestamp"),
        ),
        # not probed (interpolation method / above the auto limit), first cycle: a bound of 0 -> nothing
        ({"lag": 50, "committed": 50, "table": FRESH}, (None, "unknown")),
        # not probed, later: a lower bound, labelled as one
        ({"lag": 50, "committed": 50, "table": TABLE}, (100.0, "lower_bound")),
        # a record without a timestamp falls back the same way
        (
            {"lag": 50, "committed": 50, "table": TABLE, "timestamp": None, "probing": True},
            (100.0, "lower_bound"),
        ),
        # no table at all
        ({"lag": 5, "committed": 10, "table": ()}, (None, "unknown")),
    ],
)
def test_lag_seconds_estimate(kw, expected) -> None:
    assert lag_seconds_estimate(now=NOW, **kw) == expected


def test_not_read_is_distinct_from_no_timestamp() -> None:
    assert lag_seconds_estimate(
        lag=1, committed=50, table=FRESH, now=NOW, timestamp=NOT_READ, probing=True
    ) == (
        None,
        "pending",
    )


@pytest.mark.parametrize(
    ("table", "committed", "unbounded"),
    [(TABLE, 50, True), (TABLE, 120, False), (FRESH, 50, True), ((), 1, True)],
)
def test_is_unbounded(table, committed, unbounded) -> None:
    assert is_unbounded(table, committed) is unbounded
