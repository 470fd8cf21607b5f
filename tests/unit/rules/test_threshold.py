"""threshold: the correctness table. Histories are lag per partition, one reading a minute."""

from __future__ import annotations

import pytest
from rule_histories import LAG, T0, L, merge, outcome, table

from watchtower.rules.kinds.threshold import ThresholdRule

NOW = T0 + 240  # the 5th reading


def rule(**kw):
    base = {"name": "lag", "selector": f'{LAG}{{group="g"}}', "bound": 10_000, "by": ["group"]}
    return ThresholdRule.model_validate({**base, **kw})


CASES = [
    # n, rule overrides, history, now, expected {labels: (breaching, value, no_data)}
    (
        1,
        {},
        table(LAG, {"0": [0, 0, 0, 0, 12_000], "1": [0, 0, 0, 0, 50]}, group="g"),
        NOW,
        {L(group="g"): (True, 12_000, False)},
    ),
    (
        2,
        {},
        table(LAG, {"0": [10_000] * 5}, group="g"),
        NOW,
        {L(group="g"): (False, 10_000, False)},
    ),  # exactly at the bound with > : not breaching
    (
        3,
        {"op": ">="},
        table(LAG, {"0": [10_000] * 5}, group="g"),
        NOW,
        {L(group="g"): (True, 10_000, False)},
    ),  # >= includes the bound
    (4, {}, table(LAG, {"0": [9_999] * 5}, group="g"), NOW, {L(group="g"): (False, 9_999, False)}),
    (
        5,
        {"stale_after": "3m"},
        table(LAG, {"0": [20_000]}, group="g"),
        NOW,
        {(): (False, None, True)},
    ),  # newest sample 4 minutes old: no data, not a breach
    (6, {}, [], NOW, {(): (False, None, True)}),  # nothing at all
    (
        7,
        {"aggregate": "none", "by": []},
        table(LAG, {"0": [1, 1, 1, 1, 1], "1": [20_000, 20_000, 20_000, None, None]}, group="g"),
        NOW,
        {L(group="g", partition="0"): (False, 1, False), L(group="g", partition="1"): (False, None, True)},
    ),  # partition 1 disappeared: its series resolves
    (
        8,
        {},
        table(LAG, {"0": [1, 1, 1, 1, 1], "1": [20_000, 20_000, 20_000, None, None]}, group="g"),
        NOW,
        {L(group="g"): (False, 1, False)},
    ),  # ...and stops counting in the aggregate
    (
        9,
        {},
        table(LAG, {"0": [1, 1, 1, 1, 1], "7": [None, None, None, None, 15_000]}, group="g"),
        NOW,
        {L(group="g"): (True, 15_000, False)},
    ),  # a new partition counts as soon as it appears
    (
        10,
        {"aggregate": "sum"},
        table(LAG, {"0": [6_000] * 5, "1": [6_000] * 5}, group="g"),
        NOW,
        {L(group="g"): (True, 12_000, False)},
    ),
    (
        11,
        {"aggregate": "avg"},
        table(LAG, {"0": [6_000] * 5, "1": [6_000] * 5}, group="g"),
        NOW,
        {L(group="g"): (False, 6_000, False)},
    ),
    (
        12,
        {"selector": f'{LAG}{{group=~"orders-.*"}}'},
        merge(
            table(LAG, {"0": [20_000] * 5}, group="orders-a"),
            table(LAG, {"0": [30_000] * 5}, group="payments"),
            table(LAG, {"0": [5] * 5}, group="orders-b"),
        ),
        NOW,
        {L(group="orders-a"): (True, 20_000, False), L(group="orders-b"): (False, 5, False)},
    ),  # regex, per group
    (
        13,
        {"op": "<", "bound": 100, "selector": "watchtower_records_in_per_second", "by": []},
        table("watchtower_records_in_per_second", {"map": [500, 400, 300, 200, 99]}, label="vertex"),
        NOW,
        {(): (True, 99, False)},
    ),
    (
        14,
        {},
        table(LAG, {"0": [20_000, None, None, None, 5]}, group="g"),
        NOW,
        {L(group="g"): (False, 5, False)},
    ),  # a gap in the middle does not matter, the newest value does
]


@pytest.mark.parametrize(
    ("n", "overrides", "history", "now", "expected"), CASES, ids=[f"case{c[0]}" for c in CASES]
)
def test_threshold_table(n, overrides, history, now, expected):
    assert outcome(rule(**overrides).evaluate(history, now)) == expected, n


def test_offenders_name_the_worst_partitions_and_summary_formats():
    history = table(LAG, {"0": [50], "1": [30_000], "2": [12_000], "3": [9_000]}, group="g")
    [r] = rule(summary="{labels[group]} {value:.0f} > {bound:.0f}").evaluate(history, T0)
    assert [dict(o.labels)["partition"] for o in r.offenders] == ["1", "2", "3"]
    assert r.summary == "g 30000 > 10000"
    assert r.severity.value == "ticket" and r.rule == "lag"


def test_readings_after_now_are_ignored():
    history = table(LAG, {"0": [1, 99_999]}, group="g")
    assert outcome(rule().evaluate(history, T0)) == {L(group="g"): (False, 1, False)}
