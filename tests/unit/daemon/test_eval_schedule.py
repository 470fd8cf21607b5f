"""The evaluator's schedule: timer ticks, reading-driven cycles and the busy bound, as a table."""

from __future__ import annotations

import pytest

from watchtower.daemon.eval_schedule import Plan, next_tick, owes, plan, reading_gap


@pytest.mark.parametrize(
    ("now", "next_tick_at", "pending", "ready_at", "expected"),
    [
        (10.0, 10.0, False, 0.0, Plan("timer", stale=True)),  # the tick is due: the stale rules run
        (10.5, 10.0, True, 0.0, Plan("timer", stale=True)),  # the tick wins over readings (it covers them)
        (10.5, 10.0, True, 10.7, Plan("timer", rules=False)),  # inside the busy pause: a step, no rule
        (10.2, 11.0, True, 10.0, Plan("readings")),  # a fresh reading, allowed now: at once
        (10.2, 11.0, True, 10.2, Plan("readings")),
        (10.2, 11.0, True, 10.5, Plan("wait", 0.3)),  # busy bound: wait until ready
        (10.2, 11.0, True, 12.0, Plan("wait", 0.8)),  # ...but never past the tick
        (10.2, 11.0, False, 0.0, Plan("wait", 0.8)),  # nothing fresh: until the tick
    ],
)
def test_plan(now, next_tick_at, pending, ready_at, expected) -> None:
    got = plan(now, next_tick=next_tick_at, pending=pending, ready_at=ready_at)
    assert (got.action, got.rules, got.stale) == (expected.action, expected.rules, expected.stale)
    assert got.wait == pytest.approx(expected.wait)


@pytest.mark.parametrize(
    ("now", "pending", "ready_at", "expected"),
    [
        (10.2, True, 10.0, Plan("readings", stale=True)),  # the readings' cycle pays what the tick owed
        (10.2, False, 10.0, Plan("readings", stale=True)),  # no reading waiting: the budget's end pays it
        (10.2, False, 10.5, Plan("wait", 0.3)),  # ...not before the budget allows
        (10.2, True, 12.0, Plan("wait", 0.8)),
    ],
)
def test_a_tick_owed_its_stale_rules_runs_them_with_the_next_cycle_the_budget_allows(
    now, pending, ready_at, expected
) -> None:
    got = plan(now, next_tick=11.0, pending=pending, ready_at=ready_at, owed=True)
    assert (got.action, got.rules, got.stale) == (expected.action, expected.rules, expected.stale)
    assert got.wait == pytest.approx(expected.wait)


@pytest.mark.parametrize(
    ("ran", "owed", "after"),
    [
        (Plan("timer", rules=False), False, True),  # a step-only tick owes its stale rules
        (Plan("timer", rules=False), True, True),
        (Plan("readings"), True, True),  # a cycle without them does not pay
        (Plan("readings", stale=True), True, False),
        (Plan("timer", stale=True), True, False),
        (Plan("readings"), False, False),
        (Plan("wait", 0.3), True, True),
    ],
)
def test_owes(ran, owed, after) -> None:
    assert owes(ran, owed) is after


def _saturated(seconds: float, interval: float, cost: float, busy: float) -> tuple[list[float], float]:
    """The loop's schedule under a collector that always has a reading waiting, each cycle that runs rules
    costing `cost` s of CPU (and wall): when the stale rules ran, and the share of time rules took."""
    t = due = ready_at = 0.0
    owed, stale_runs, rules_time = False, [], 0.0
    while t < seconds:
        p = plan(t, next_tick=due, pending=True, ready_at=ready_at, owed=owed)
        if p.action == "wait":
            t += p.wait
            continue
        owed = owes(p, owed)
        if p.stale:
            stale_runs.append(t)
        t += cost if p.rules else cost / 100  # a step alone is cheap
        if p.rules:
            rules_time += cost
            ready_at = t + reading_gap(cost, busy)
        if p.action == "timer":
            due, _ = next_tick(due, t, interval)
    return stale_runs, rules_time / t


@pytest.mark.parametrize(("cost", "busy"), [(0.037, 0.5), (0.13, 0.5), (0.011, 0.25), (0.3, 0.9)])
def test_a_saturated_budget_starves_no_stale_rule_and_keeps_its_bound(cost, busy) -> None:
    interval = 1.0
    stale_runs, share = _saturated(60.0, interval, cost, busy)
    gaps = [b - a for a, b in zip(stale_runs, stale_runs[1:], strict=False)]
    # Every tick's stale rules run, at most one busy pause (plus a cycle) after the tick.
    assert len(stale_runs) >= 59
    assert max(gaps) <= interval + reading_gap(cost, busy) + 2 * cost
    assert share <= busy + 0.01


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
