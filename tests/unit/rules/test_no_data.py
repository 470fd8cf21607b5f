"""The no-data alert: a rule whose selectors matched no series for `stale_after` (pure, from the history)."""

from __future__ import annotations

import pytest

from watchtower.alerting.lifecycle import RuleTiming
from watchtower.alerting.model import Severity
from watchtower.core.types import Reading, Sample, labels
from watchtower.rules import no_data
from watchtower.rules.config import RuleSet, evaluate_all
from watchtower.rules.kinds.burn_rate import BurnRateRule
from watchtower.rules.kinds.threshold import ThresholdRule

LAG = "watchtower_consumer_lag_messages"
RULE = ThresholdRule(name="lag", selector=f'{LAG}{{group="g"}}', bound=10, stale_after=60, route="oncall")


def reading(at: float, group: str | None = "g", metric: str = LAG) -> Reading:
    samples = () if group is None else (Sample(metric, labels(group=group, topic="t", partition=0), 5.0),)
    return Reading("kafka_lag", at, samples)


# (case, readings at times, now, breaching)
CASES = [
    ("no history at all: nothing to say", [], 1000, None),
    ("watched for less than stale_after: not yet", [reading(970, None), reading(990, None)], 1000, False),
    ("watched long enough, never matched", [reading(900, None), reading(990, None)], 1000, True),
    ("another group only: the selector matches nothing", [reading(900, "x"), reading(990, "x")], 1000, True),
    ("matched within stale_after", [reading(900, None), reading(960, "g")], 1000, False),
    ("matched exactly stale_after ago: still fresh", [reading(900, None), reading(940, "g")], 1000, False),
    ("matched, then silent for longer than stale_after", [reading(900, "g"), reading(990, None)], 1000, True),
]


@pytest.mark.parametrize(("case", "history", "now", "breaching"), CASES, ids=[c[0] for c in CASES])
def test_no_data_table(case: str, history: list[Reading], now: float, breaching: bool | None) -> None:
    results = no_data.evaluate([RULE], history, now)
    if breaching is None:
        assert results == []
        return
    [r] = results
    assert (r.rule, r.labels, r.breaching, r.severity, r.no_data) == (
        "lag:no-data",
        (),
        breaching,
        Severity.TICKET,
        False,
    )
    assert r.bound == 60
    if breaching:
        assert f'{LAG}{{group="g"}}' in r.summary and "matched no series for 1m" in r.summary


def test_every_selector_of_a_rule_counts_and_rules_without_stale_after_use_the_default() -> None:
    slo = BurnRateRule(
        name="slo",
        total="watchtower_e2e_events_total",
        bad="watchtower_e2e_events_slow_total",
        objective=0.99,
    )
    total_only = [
        Reading("e2e", 0, ()),
        Reading("e2e", 350, (Sample("watchtower_e2e_events_total", labels(source="s"), 1.0),)),
    ]
    [r] = no_data.evaluate([slo], total_only, 400)
    assert not r.breaching  # one of its selectors still matches
    [r] = no_data.evaluate([slo], [Reading("e2e", 0, ()), Reading("e2e", 350, ())], 400)
    assert r.breaching and r.bound == no_data.DEFAULT_STALE_AFTER


def test_evaluate_all_and_the_lifecycle_config_carry_the_no_data_rule() -> None:
    results, failed = evaluate_all([RULE], [reading(900, None), reading(990, None)], 1000)
    assert failed == {}
    assert [(r.rule, r.breaching) for r in results if r.rule.endswith(":no-data")] == [("lag:no-data", True)]
    cfg = RuleSet((RULE,)).lifecycle_config()
    assert cfg.timing("lag:no-data") == RuleTiming(for_=0.0, keep_firing_for=0.0, route="oncall")


def test_a_rule_that_opts_out_gets_no_no_data_result() -> None:
    silent = [reading(900, None), reading(990, None)]
    assert [r.breaching for r in no_data.evaluate([RULE], silent, 1000)] == [True]
    quiet = RULE.model_copy(update={"alert_on_no_data": False})
    assert no_data.evaluate([quiet], silent, 1000) == []
