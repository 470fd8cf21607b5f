"""Both lag-in-seconds estimators, as pure functions."""

from __future__ import annotations

import pytest

from watchtower.collectors.kafka_lag.seconds import (
    OffsetPoint,
    lag_seconds_from_timestamp,
    lag_seconds_interpolated,
    produce_time,
    record_observation,
)

NOW = 10_000.0


# (case, record ts, lag, expected)
TIMESTAMP_CASES = [
    (1, NOW - 42, 5, 42.0),
    (2, NOW - 42, 0, 0.0),  # nothing waiting: zero whatever the record says
    (3, None, 5, None),  # no timestamp: caller falls back to interpolation
    (4, -1.0, 5, None),
    (5, NOW + 3, 5, 0.0),  # producer clock ahead: clamp, never negative
]


@pytest.mark.parametrize("case,ts,lag,expected", TIMESTAMP_CASES, ids=[f"ts-{c[0]}" for c in TIMESTAMP_CASES])
def test_from_timestamp(case: int, ts: float | None, lag: int, expected: float | None) -> None:
    assert lag_seconds_from_timestamp(ts, NOW, lag) == expected


def _table(*obs: tuple[int, float], size: int = 128) -> tuple[OffsetPoint, ...]:
    t: tuple[OffsetPoint, ...] = ()
    for hwm, at in obs:
        t = record_observation(t, hwm, at, size)
    return t


def test_unchanged_watermark_extends_the_last_point() -> None:
    t = _table((100, 0), (100, 5), (100, 10), (200, 15))
    assert t == (OffsetPoint(100, 0, 10), OffsetPoint(200, 15, 15))


def test_lower_watermark_restarts_the_table() -> None:
    assert _table((100, 0), (200, 5), (3, 10)) == (OffsetPoint(3, 10, 10),)


def test_full_table_thins_the_old_half_and_keeps_the_oldest_point() -> None:
    t = _table(*[(i * 10, float(i)) for i in range(1, 21)], size=8)
    assert len(t) <= 8
    assert t[0] == OffsetPoint(10, 1.0, 1.0)  # reach back in time is kept
    assert t[-1] == OffsetPoint(200, 20.0, 20.0)
    assert [p.hwm for p in t] == sorted(p.hwm for p in t)


# Table: hwm 100 seen from t=0 to t=100 (idle), then 200 at t=110, then 300 at t=120.
TABLE = _table((100, 0), (100, 100), (200, 110), (300, 120))

# (case, offset, expected produce time, bounded)
INTERP_CASES = [
    (1, 100, 100 + 10 * 1 / 100, True),  # first offset after the idle period arrived just after t=100
    (2, 199, 110.0, True),
    (3, 249, 115.0, True),
    (4, 50, 0.0, False),  # older than the table: lower bound, the table's first observation
    (5, 300, None, None),  # not written yet as far as the table knows
]


@pytest.mark.parametrize(
    "case,offset,expected,bounded", INTERP_CASES, ids=[f"interp-{c[0]}" for c in INTERP_CASES]
)
def test_produce_time(case: int, offset: int, expected: float | None, bounded: bool | None) -> None:
    got = produce_time(TABLE, offset)
    if expected is None:
        assert got is None
    else:
        assert got[0] == pytest.approx(expected)
        assert got[1] is bounded


def test_interpolated_lag_seconds() -> None:
    assert lag_seconds_interpolated(TABLE, 249, 51, now=125.0) == pytest.approx(10.0)
    assert lag_seconds_interpolated(TABLE, 300, 0, now=125.0) == 0.0
    assert lag_seconds_interpolated((), 5, 3, now=125.0) is None
    # the idle period does not leak into records written after it
    assert lag_seconds_interpolated(TABLE, 100, 200, now=125.0) == pytest.approx(24.9)
