"""throughput_floor: output below a floor while input keeps coming."""

from __future__ import annotations

import pytest
from rule_histories import T0, L, merge, outcome, table

from watchtower.rules.kinds.throughput import ThroughputFloorRule

OUT = "watchtower_records_in_per_second"
IN = "watchtower_topic_produce_rate_messages_per_second"
HWM = "watchtower_topic_partition_high_watermark"
NOW = T0 + 120


def rule(**kw):
    base = {"name": "throughput", "output": OUT, "input": IN, "floor": 100, "window": "2m"}
    return ThroughputFloorRule.model_validate({**base, **kw})


def out(values):
    return table(OUT, {"map": values}, label="vertex", job="agg")


def inp(values):
    return table(IN, {"orders": values}, label="topic")


CASES = [
    # n, overrides, history, expected {labels: (breaching, output per second, no_data)}
    (1, {}, merge(out([50, 50, 50]), inp([500, 500, 500])), {(): (True, 50.0, False)}),
    (2, {}, merge(out([50, 50, 50]), inp([0, 0, 0])), {(): (False, 50.0, False)}),  # nothing coming in: fine
    (
        3,
        {},
        merge(out([100, 100, 100]), inp([500, 500, 500])),
        {(): (False, 100.0, False)},
    ),  # exactly the floor
    (
        4,
        {},
        merge(out([200, 50, 20]), inp([500, 500, 500])),
        {(): (True, 90.0, False)},
    ),  # judged on the window average
    (
        5,
        {"input_min": 500},
        merge(out([50, 50, 50]), inp([500, 500, 500])),
        {(): (False, 50.0, False)},
    ),  # input must exceed input_min
    (6, {}, out([50, 50, 50]), {(): (False, None, True)}),  # input unknown
    (7, {}, inp([500, 500, 500]), {(): (False, None, True)}),  # output unknown: no data, not a breach
    # input as a counter: high watermarks of two partitions, +600 each a minute = 20/s
    (
        8,
        {"input": {"selector": HWM, "counter": True}, "floor": 30},
        merge(out([25, 25, 25]), table(HWM, {"0": [0, 600, 1200], "1": [0, 600, 1200]}, topic="orders")),
        {(): (True, 25.0, False)},
    ),
    (
        10,
        {"output": {"selector": OUT, "aggregate": "max"}},
        merge(out([50, 50, 50]), table(OUT, {"sink": [40] * 3}, label="vertex", job="agg"), inp([500] * 3)),
        {(): (True, 50.0, False)},
    ),  # max over vertices: a record is not counted once per operator
    (
        9,
        {"by": ["job"]},
        merge(out([50, 50, 50]), table(OUT, {"map": [500] * 3}, label="vertex", job="other"), inp([500] * 3)),
        {L(job="agg"): (True, 50.0, False), L(job="other"): (False, 500.0, False)},
    ),  # topic-wide input applies to each job
]


@pytest.mark.parametrize(("n", "overrides", "history", "expected"), CASES, ids=[f"case{c[0]}" for c in CASES])
def test_throughput_table(n, overrides, history, expected):
    assert outcome(rule(**overrides).evaluate(history, NOW)) == expected, n
