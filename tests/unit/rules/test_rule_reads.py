"""Which metrics a rule reads (from its selectors), and which rules a fresh reading affects."""

from __future__ import annotations

import pytest

from watchtower.rules.kinds import KINDS
from watchtower.rules.reads import affected_rules, metrics_read

LAG, COMMITTED = "watchtower_consumer_lag_messages", "watchtower_consumer_committed_offset"


@pytest.mark.parametrize(
    ("spec", "metrics"),
    [
        ({"kind": "threshold", "selector": f'{LAG}{{group="g"}}', "bound": 1}, {LAG}),
        ({"kind": "consumer_status"}, {LAG, COMMITTED}),  # its defaults count
        (
            {
                "kind": "throughput_floor",
                "output": {"selector": "out_total", "counter": True},
                "input": "in_rate",
                "floor": 1,
                "window": "1m",
            },
            {"out_total", "in_rate"},  # selectors inside nested models
        ),
        (
            {"kind": "burn_rate", "total": "req_total", "bad": "err_total", "objective": 0.99},
            {"req_total", "err_total"},
        ),
    ],
)
def test_metrics_read_from_selectors(spec, metrics) -> None:
    rule = KINDS[spec["kind"]].model_validate({"name": "r", **spec})
    assert metrics_read(rule) == frozenset(metrics)


@pytest.mark.parametrize(
    ("fresh", "expected"),
    [
        ({LAG}, [0, 2]),
        ({"watchtower_e2e_latency_seconds"}, [1, 2]),
        (set(), [2]),  # a rule reading "anything" (None) always runs
        ({LAG, "watchtower_e2e_latency_seconds"}, [0, 1, 2]),
    ],
)
def test_affected_rules(fresh, expected) -> None:
    reads = [frozenset({LAG, COMMITTED}), frozenset({"watchtower_e2e_latency_seconds"}), None]
    assert affected_rules(reads, frozenset(fresh)) == expected
