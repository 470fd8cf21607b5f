"""Rates, time to drain and statuses: numbered tables, fixed `now`, no broker."""

from __future__ import annotations

import math

import pytest

from watchtower.collectors.kafka_lag.model import (
    Status,
    clamp_lag,
    group_retained,
    group_status,
    partition_status,
    time_to_drain,
    trim_points,
    windowed_rate,
)

NOW = 1_000.0

# (case, points, window, expected rate)
RATE_CASES = [
    (1, [], 60, None),
    (2, [(NOW, 10)], 60, None),
    (3, [(NOW - 10, 0), (NOW, 100)], 60, 10.0),
    (
        4,
        [(NOW - 120, 0), (NOW - 30, 60), (NOW, 120)],
        60,
        120 / 120,
    ),  # newest point before window start is the base
    (5, [(NOW - 90, 0), (NOW - 60, 0), (NOW - 30, 60), (NOW, 120)], 60, 2.0),  # base exactly at window start
    (6, [(NOW - 10, 100), (NOW, 50)], 60, None),  # offsets went backwards: no honest rate
    (7, [(NOW - 10, 100), (NOW, 100)], 60, 0.0),  # idle
    (8, [(NOW, 0), (NOW, 10)], 60, None),  # zero elapsed time
    (9, [(NOW - 5, 0), (NOW - 4, 1000), (NOW, 1000)], 2, 0.0),  # the burst ended before the window
    (10, [(NOW - 5, 0), (NOW - 4, 1000), (NOW, 1000)], 60, 200.0),  # nothing before the window: oldest point
]


@pytest.mark.parametrize("case,points,window,expected", RATE_CASES, ids=[f"rate-{c[0]}" for c in RATE_CASES])
def test_windowed_rate(case: int, points: list, window: float, expected: float | None) -> None:
    got = windowed_rate(points, NOW, window)
    assert got == pytest.approx(expected) if expected is not None else got is None


def test_trim_keeps_the_base_point_of_the_window() -> None:
    points = [(NOW - 200, 0), (NOW - 100, 1), (NOW - 50, 2), (NOW, 3)]
    assert trim_points(points, NOW, 60) == [(NOW - 100, 1), (NOW - 50, 2), (NOW, 3)]
    assert windowed_rate(trim_points(points, NOW, 60), NOW, 60) == windowed_rate(points, NOW, 60)


# (case, lag, consume, produce, expected seconds)
DRAIN_CASES = [
    (1, 0, None, None, 0.0),
    (2, 0, 0.0, 100.0, 0.0),  # nothing waiting: drained, whatever the rates
    (3, 100, None, 5.0, None),  # rates unknown on the first cycle
    (4, 100, 15.0, 5.0, 10.0),
    (5, 100, 5.0, 5.0, math.inf),  # keeping pace, not draining
    (6, 100, 0.0, 0.0, math.inf),  # stuck on an idle topic
    (7, 100, 1.0, 50.0, math.inf),  # falling behind
]


@pytest.mark.parametrize(
    "case,lag,consume,produce,expected", DRAIN_CASES, ids=[f"drain-{c[0]}" for c in DRAIN_CASES]
)
def test_time_to_drain(
    case: int, lag: int, consume: float | None, produce: float | None, expected: float | None
) -> None:
    assert time_to_drain(lag, consume, produce) == expected


# (case, lag, committed changed ago, hwm changed ago, expected) with stall_after=60, idle_after=30
STATUS_CASES = [
    (1, 0, 0, 0, Status.OK),  # caught up, data flowing
    (2, 0, 500, 29, Status.OK),
    (3, 0, 500, 30, Status.IDLE),  # idle topic: no new offsets, nothing waiting
    (4, 5, 59, 0, Status.OK),
    (5, 5, 60, 0, Status.STUCK),  # stuck consumer: lag and committed offset still
    (6, 5, 600, 600, Status.STUCK),  # stuck on an idle topic is still stuck
    (7, 0, 600, 600, Status.IDLE),
]


@pytest.mark.parametrize(
    "case,lag,c_ago,h_ago,expected", STATUS_CASES, ids=[f"status-{c[0]}" for c in STATUS_CASES]
)
def test_partition_status(case: int, lag: int, c_ago: float, h_ago: float, expected: Status) -> None:
    assert partition_status(lag, NOW, NOW - c_ago, NOW - h_ago, stall_after=60, idle_after=30) is expected


# (case, partition statuses, net drain rates, lag, expected)
GROUP_CASES = [
    (1, [], [], 0, Status.IDLE),
    (2, [Status.IDLE, Status.IDLE], [0.0], 0, Status.IDLE),
    (3, [Status.IDLE, Status.OK], [0.0], 0, Status.OK),
    (4, [Status.OK, Status.STUCK], [5.0], 10, Status.STUCK),  # one stuck partition makes the group stuck
    (5, [Status.OK, Status.OK], [-3.0], 10, Status.LAGGING),  # consuming, but the lag grows
    (6, [Status.OK], [-3.0], 0, Status.OK),  # negative net rate with no lag is noise
    (7, [Status.OK], [None], 10, Status.OK),  # rate not known yet
    (8, [Status.STUCK], [-3.0], 10, Status.STUCK),  # stuck outranks lagging
]


@pytest.mark.parametrize(
    "case,statuses,rates,lag,expected", GROUP_CASES, ids=[f"group-{c[0]}" for c in GROUP_CASES]
)
def test_group_status(case: int, statuses: list, rates: list, lag: int, expected: Status) -> None:
    assert group_status(statuses, rates, lag) is expected


@pytest.mark.parametrize(
    "hwm,committed,expected",
    [(10, 4, (6, False)), (10, 10, (0, False)), (10, 12, (0, True)), (0, 0, (0, False))],
)
def test_clamp_lag(hwm: int, committed: int, expected: tuple[int, bool]) -> None:
    assert clamp_lag(hwm, committed) == expected


@pytest.mark.parametrize(
    "inactive_since,retention,expected",
    [(None, 60, True), (NOW - 10, 60, True), (NOW - 60, 60, True), (NOW - 61, 60, False), (NOW, 0, True)],
)
def test_group_retained(inactive_since: float | None, retention: float, expected: bool) -> None:
    assert group_retained(inactive_since, NOW, retention) is expected
