"""growth: newest value / lowest value in the window, against a factor."""

from __future__ import annotations

import pytest
from rule_histories import LAG, T0, L, outcome, table

from watchtower.rules.kinds.growth import GrowthRule

NOW = T0 + 600


def rule(**kw):
    base = {
        "name": "lag-doubling",
        "selector": LAG,
        "factor": 2,
        "window": "5m",
        "by": ["group"],
        "aggregate": "sum",
    }
    return GrowthRule.model_validate({**base, **kw})


def lag(values, **kw):
    return table(LAG, {"0": values}, group="g", **kw)


CASES = [
    # n, overrides, history (11 readings, one a minute, NOW is the last), expected
    (
        1,
        {},
        lag([1000] * 6 + [1000, 1200, 1500, 1800, 2000]),
        {L(group="g"): (True, 2.0, False)},
    ),  # exactly 2x
    (2, {}, lag([1000] * 6 + [1000, 1200, 1500, 1800, 1999]), {L(group="g"): (False, 1.999, False)}),
    (3, {}, lag([100] * 5 + [5000] * 6), {L(group="g"): (False, 1.0, False)}),  # grew before the window
    (4, {"floor": 1000}, lag([0] * 10 + [900]), {L(group="g"): (False, 0.9, False)}),  # from zero: the floor
    (5, {}, lag([0] * 10 + [900]), {L(group="g"): (True, 900.0, False)}),  # default floor 1
    (
        6,
        {"min_value": 1000},
        lag([0] * 10 + [900]),
        {L(group="g"): (False, 900.0, False)},
    ),  # small in absolute terms
    (
        7,
        {},
        lag([None] * 10 + [5000]),
        {L(group="g"): (False, None, True)},
    ),  # one point: nothing to compare with
    (8, {}, lag([1000] * 4), {(): (False, None, True)}),  # nothing in the window at all: no data
    # against the lowest point in the window, not the first: 1000 -> 2000 is 2x although it started at 2000
    (9, {}, lag([2000, 1000, 4000, 3000, 4000, 2000], start=T0 + 300), {L(group="g"): (True, 2.0, False)}),
    (
        10,
        {"aggregate": "none", "by": []},
        table(LAG, {"0": [1000] * 11, "1": [1000] * 9 + [None, None]}, group="g"),
        {L(group="g", partition="0"): (False, 1.0, False), L(group="g", partition="1"): (False, None, True)},
    ),
]


@pytest.mark.parametrize(("n", "overrides", "history", "expected"), CASES, ids=[f"case{c[0]}" for c in CASES])
def test_growth_table(n, overrides, history, expected):
    assert outcome(rule(**overrides).evaluate(history, NOW)) == expected, n


def test_summary_shows_baseline_and_window():
    [r] = rule().evaluate(lag([1000] * 6 + [1000, 1200, 1500, 1800, 3000]), NOW)
    assert r.summary == "lag-doubling: grew 3.00x (from 1000 to 3000) within 5m for group=g"
