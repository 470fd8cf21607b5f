"""rate: per-minute increase of a counter, per series then aggregated; resets handled."""

from __future__ import annotations

import pytest
from rule_histories import T0, L, outcome, table

from watchtower.rules.kinds.rate import RateRule

DLQ = "watchtower_dlq_records_total"
NOW = T0 + 180  # 4 readings, one a minute


def rule(**kw):
    base = {"name": "dlq-rate", "selector": DLQ, "bound": 500, "window": "3m", "by": ["topic"]}
    return RateRule.model_validate({**base, **kw})


def dlq(columns, **kw):
    return table(DLQ, columns, topic="orders.dlq", **kw)


CASES = [
    # n, overrides, history, expected {labels: (breaching, per minute, no_data)}
    (1, {}, dlq({"0": [0, 600, 1200, 1800]}), {L(topic="orders.dlq"): (True, 600.0, False)}),
    (
        2,
        {},
        dlq({"0": [0, 500, 1000, 1500]}),
        {L(topic="orders.dlq"): (False, 500.0, False)},
    ),  # exactly the bound
    (3, {"op": ">="}, dlq({"0": [0, 500, 1000, 1500]}), {L(topic="orders.dlq"): (True, 500.0, False)}),
    # reset: 1000 -> 1300 (+300), restart to 100 (+100 since zero), 400 (+300): 700 in 3 minutes
    (4, {}, dlq({"0": [1000, 1300, 100, 400]}), {L(topic="orders.dlq"): (False, round(700 / 3, 6), False)}),
    (
        5,
        {},
        dlq({"0": [None, None, None, 50]}),
        {L(topic="orders.dlq"): (False, None, True)},
    ),  # one sample: no rate yet
    (
        6,
        {},
        dlq({"0": [0, 300, 600, 900], "1": [0, 300, 600, 900]}),
        {L(topic="orders.dlq"): (True, 600.0, False)},
    ),
    (
        7,
        {"aggregate": "max"},
        dlq({"0": [0, 300, 600, 900], "1": [0, 400, 800, 1200]}),
        {L(topic="orders.dlq"): (False, 400.0, False)},
    ),
    (8, {}, dlq({"0": [0, 600]}, start=T0 - 600), {(): (False, None, True)}),  # nothing within the window
    # partition 1 disappeared: its old growth no longer counts; partition 0 alone
    (
        9,
        {},
        dlq({"0": [0, 100, 200, 300], "1": [0, 5000, 10_000, None]}),
        {L(topic="orders.dlq"): (False, 100.0, False)},
    ),
    (
        10,
        {"aggregate": "none", "by": []},
        dlq({"0": [0, 100, 200, 300], "1": [None, None, 0, 900]}),
        {
            L(topic="orders.dlq", partition="0"): (False, 100.0, False),
            L(topic="orders.dlq", partition="1"): (True, 900.0, False),
        },
    ),
    (11, {}, dlq({"0": [7, 7, 7, 7]}), {L(topic="orders.dlq"): (False, 0.0, False)}),  # flat counter
]


@pytest.mark.parametrize(("n", "overrides", "history", "expected"), CASES, ids=[f"case{c[0]}" for c in CASES])
def test_rate_table(n, overrides, history, expected):
    assert outcome(rule(**overrides).evaluate(history, NOW)) == expected, n
