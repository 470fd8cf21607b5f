"""The evaluator's schedule: timer ticks, reading-driven cycles and the busy bound, as a table."""

from __future__ import annotations

import pytest

from watchtower.daemon.eval_schedule import Plan, next_tick, plan, reading_gap


@pytest.mark.parametrize(
    ("now", "next_tick_at", "pending", "ready_at", "expected"),
    [
        (10.0, 10.0, False, 0.0, Plan("timer")),  # the tick is due
        (10.5, 10.0, True, 0.0, Plan("timer")),  # the tick wins over readings (it covers them)
        (10.2, 11.0, True, 10.0, Plan("readings")),  # a fresh reading, allowed now: at once
        (10.2, 11.0, True, 10.2, Plan("readings")),
        (10.2, 11.0, True, 10.5, Plan("wait", 0.3)),  # busy bound: wait until ready
        (10.2, 11.0, True, 12.0, Plan("wait", 0.8)),  # ...but never past the tick
        (10.2, 11.0, False, 0.0, Plan("wait", 0.8)),  # nothing fresh: until the tick
    ],
)
def test_plan(now, next_tick_at, pending, ready_at, expected) -> None:
    got = plan(now, next_tick=next_tick_at, pending=pending, ready_at=ready_at)
    assert got.action == expected.action
    assert got.wait == pytest.approx(expected.wait)


@pytest.mark.parametrize(
    ("duration", "busy", "min_gap", "gap"),
    [
        (0.0, 0.5, 0.0, 0.0),  # a free evaluation: the next may follow at once
        (0.2, 0.5, 0.0, 0.2),  # half the time at most
        (0.2, 0.25, 0.0, 0.6),
        (0.2, 1.0, 0.0, 0.0),  # no bound
        (0.001, 0.5, 0.05, 0.05),  # a floor
    ],
)
def test_reading_gap(duration, busy, min_gap, gap) -> None:
    assert reading_gap(duration, busy, min_gap) == pytest.approx(gap)


@pytest.mark.parametrize("busy", [0.0, -1.0, 1.5])
def test_reading_gap_rejects_a_busy_share_outside_0_1(busy) -> None:
    with pytest.raises(ValueError, match="busy"):
        reading_gap(0.1, busy)


@pytest.mark.parametrize(
    ("due", "now", "interval", "expected"),
    [
        (10.0, 10.01, 1.0, (11.0, 0)),  # on time
        (10.0, 10.99, 1.0, (11.0, 0)),
        (10.0, 11.2, 1.0, (12.0, 1)),  # ran past one tick: skipped and counted
        (10.0, 13.5, 1.0, (14.0, 3)),
        (10.0, 10.0, 0.25, (10.25, 0)),
    ],
)
def test_next_tick_stays_on_the_grid_and_counts_missed_ticks(due, now, interval, expected) -> None:
    got = next_tick(due, now, interval)
    assert got[0] == pytest.approx(expected[0]) and got[1] == expected[1]
