"""time_to_breach: a least-squares trend over the window predicts the crossing."""

from __future__ import annotations

import pytest
from rule_histories import LAG, T0, L, outcome, table

from watchtower.rules.kinds.time_to_breach import TimeToBreachRule

NOW = T0 + 300  # 6 readings, one a minute


def rule(**kw):
    base = {
        "name": "lag-trend",
        "selector": LAG,
        "threshold": 10_000,
        "window": "10m",
        "horizon": "5m",
        "by": ["group"],
    }
    return TimeToBreachRule.model_validate({**base, **kw})


def lag(values, **kw):
    return table(LAG, {"0": values}, group="g", **kw)


RISING = [3000, 4000, 5000, 6000, 7000, 8000]  # +1000/min: 10,000 in 2 minutes


CASES = [
    # n, overrides, history, expected {labels: (breaching, eta seconds, no_data)}
    (1, {}, lag(RISING), {L(group="g"): (True, 120.0, False)}),
    (2, {"horizon": "1m"}, lag(RISING), {L(group="g"): (False, 120.0, False)}),
    (
        3,
        {"horizon": "2m"},
        lag(RISING),
        {L(group="g"): (True, 120.0, False)},
    ),  # crossing exactly at the horizon
    (4, {}, lag([5000] * 6), {L(group="g"): (False, None, False)}),  # flat: never
    (5, {}, lag(list(reversed(RISING))), {L(group="g"): (False, None, False)}),  # falling: never
    (6, {}, lag([8000, 9000, 10_001]), {L(group="g"): (True, 0.0, False)}),  # already past it
    (7, {}, lag([8000, 9000]), {L(group="g"): (False, None, True)}),  # fewer than min_points
    (8, {"min_points": 2}, lag([8000, 9000], start=NOW - 60), {L(group="g"): (True, 60.0, False)}),
    (
        9,
        {"op": "<", "threshold": 100},
        lag([700, 600, 500, 400, 300, 200]),
        {L(group="g"): (True, 60.0, False)},
    ),
    (10, {}, lag([None] * 6), {(): (False, None, True)}),
    # noisy rise: the fit, not the last two points, decides (residuals cancel: slope 1000/min, 8000 at NOW)
    (11, {}, lag([3500, 3500, 4500, 6500, 7000, 8000]), {L(group="g"): (True, 120.0, False)}),
    # the newest sample is a minute old: the crossing is a minute nearer than the fit at that sample says
    (12, {}, lag(RISING, start=T0 - 60), {L(group="g"): (True, 60.0, False)}),
]


@pytest.mark.parametrize(("n", "overrides", "history", "expected"), CASES, ids=[f"case{c[0]}" for c in CASES])
def test_time_to_breach_table(n, overrides, history, expected):
    assert outcome(rule(**overrides).evaluate(history, NOW)) == expected, n


def test_stale_sample_shortens_eta():
    [r] = rule().evaluate(lag(RISING), NOW + 30)
    assert r.value == 90.0 and r.breaching
