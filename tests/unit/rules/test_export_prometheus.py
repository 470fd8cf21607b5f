"""The PromQL each rule kind exports to (semantics are proven by promtool in test_promtool_export.py)."""

from __future__ import annotations

import pytest

from watchtower.rules.export_prometheus import NotExpressible, duration, rules_for, value_expr
from watchtower.rules.kinds.consumer_status import ConsumerStatusRule
from watchtower.rules.kinds.rate import RateRule
from watchtower.rules.kinds.threshold import ThresholdRule
from watchtower.rules.kinds.throughput import ThroughputFloorRule

LAG = 'watchtower_consumer_lag_messages{topic="t"}'


@pytest.mark.parametrize(
    ("rule", "expr"),
    [
        (ThresholdRule(name="a", selector=LAG, aggregate="none", bound=1), LAG + " > 1"),
        (ThresholdRule(name="a", selector=LAG, aggregate="max", bound=1), f"max({LAG}) > 1"),
        (
            ThresholdRule(name="a", selector=LAG, aggregate="avg", by=["group", "topic"], op="<=", bound=0.5),
            f"avg by (group, topic) ({LAG}) <= 0.5",
        ),
        (
            RateRule(name="a", selector="watchtower_checkpoints_failed_total", window=90, bound=2),
            "sum(rate(watchtower_checkpoints_failed_total[90s])) * 60 > 2",
        ),
        (
            RateRule(
                name="a",
                selector="watchtower_checkpoints_failed_total",
                aggregate="none",
                window=1.5,
                bound=2,
            ),
            "rate(watchtower_checkpoints_failed_total[1500ms]) * 60 > 2",
        ),
        (
            ThroughputFloorRule(
                name="a",
                output={"selector": "watchtower_spark_input_rows_total", "counter": True},
                input="watchtower_topic_produce_rate_messages_per_second",
                by=["job"],
                floor=5,
                input_min=1,
                window=60,
            ),
            "(sum by (job) (rate(watchtower_spark_input_rows_total[1m]))) < 5\nand on (job)\n"
            "(sum by (job) (avg_over_time(watchtower_topic_produce_rate_messages_per_second[1m]))) > 1",
        ),
    ],
)
def test_alert_expressions(rule, expr: str) -> None:
    recording, [alert] = rules_for(rule)
    assert recording == [] and alert["expr"] == expr
    assert alert["labels"] == {"severity": "ticket", "watchtower_rule": "a", "route": "default"}


def test_for_and_keep_firing_for_become_prometheus_durations() -> None:
    rule = ThresholdRule(name="a.b-c", selector=LAG, bound=1, **{"for": 90, "keep_firing_for": 3600})
    _, [alert] = rules_for(rule, "http://g/d/x?viewPanel=1")
    assert (alert["alert"], alert["for"], alert["keep_firing_for"]) == ("a_b_c", "90s", "1h")
    assert alert["annotations"]["dashboard"] == "http://g/d/x?viewPanel=1"


def test_consumer_status_is_not_expressible_and_says_why() -> None:
    rule = ConsumerStatusRule(
        name="s", committed="watchtower_consumer_committed_offset", lag="watchtower_consumer_lag_messages"
    )
    with pytest.raises(NotExpressible, match="Burrow"):
        value_expr(rule)
    with pytest.raises(NotExpressible):
        rules_for(rule)


@pytest.mark.parametrize(
    ("seconds", "text"), [(30, "30s"), (300, "5m"), (3600, "1h"), (86400, "1d"), (0.25, "250ms"), (90, "90s")]
)
def test_durations(seconds: float, text: str) -> None:
    assert duration(seconds) == text
