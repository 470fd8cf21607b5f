"""The adaptive collection interval: cost in, interval out (steps, clamping, back-off, hysteresis)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from watchtower.collectors.interval_policy import (
    IntervalPolicyConfig,
    IntervalState,
    next_interval,
    start,
    step_of,
)

CFG = IntervalPolicyConfig(enabled=True, min_interval=0.25, max_interval=8.0, cost_ratio=0.1)


@pytest.mark.parametrize(
    ("target", "step"),
    [(0.0, 0.25), (0.1, 0.25), (0.25, 0.25), (0.26, 0.5), (0.5, 0.5), (0.9, 1.0), (3.0, 4.0), (100.0, 8.0)],
)
def test_step_of(target, step) -> None:
    assert step_of(target, CFG) == pytest.approx(step)


@pytest.mark.parametrize(
    ("before", "cost", "after"),
    [
        # small and cheap: the fastest step
        (IntervalState(1.0, 0.0), 0.015, 0.25),
        # at the floor and cheap stays there
        (IntervalState(0.25, 0.015), 0.02, 0.25),
        # a dearer cycle backs off at once: 0.08 s -> 0.8 s budget -> 1 s step
        (IntervalState(0.25, 0.015), 0.08, 1.0),
        # partitions grew: 0.9 s a cycle -> 9 s, clamped to max_interval
        (IntervalState(1.0, 0.08), 0.9, 8.0),
        # one cheap cycle after a dear one: the estimate falls a quarter of the way, no step down yet
        (IntervalState(8.0, 0.9), 0.02, 8.0),
        # just under a step's budget is not enough to step down (hysteresis)
        (IntervalState(1.0, 0.049), 0.049, 1.0),
        # well under it: step down (0.04 s -> 0.4 s <= 0.5 * 0.8)
        (IntervalState(1.0, 0.04), 0.04, 0.5),
    ],
)
def test_next_interval(before, cost, after) -> None:
    assert next_interval(before, cost, CFG).interval == pytest.approx(after)


def test_a_long_cheap_spell_comes_back_down_to_the_floor() -> None:
    state = IntervalState(8.0, 0.9)
    for _ in range(40):
        state = next_interval(state, 0.01, CFG)
    assert state.interval == pytest.approx(0.25)


def test_start_clamps_the_configured_interval() -> None:
    assert start(CFG, 10.0).interval == 8.0
    assert start(CFG, 0.1).interval == 0.25
    assert start(CFG, 1.0).interval == 1.0


def test_max_below_min_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match="max_interval .* is below min_interval"):
        IntervalPolicyConfig(min_interval=2.0, max_interval=1.0)
