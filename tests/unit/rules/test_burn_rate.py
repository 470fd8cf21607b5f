"""burn_rate: multi-window SLO alerts. Traffic is 100 events/s, sampled each minute; objective 99%."""

from __future__ import annotations

import pytest
from rule_histories import T0, L, counters

from watchtower.alerting.model import Severity
from watchtower.rules.kinds.burn_rate import BurnRateRule

TOTAL, SLOW, GOOD = (
    "watchtower_e2e_events_total",
    "watchtower_e2e_events_slow_total",
    "watchtower_e2e_events_good_total",
)
H, D = 3600.0, 86400.0
NOW = T0 + 3 * D


def rule(**kw):
    return BurnRateRule.model_validate({"name": "slo", "total": TOTAL, "bad": SLOW, "objective": 0.99, **kw})


def slo(error_ratio, until=NOW, start=T0):
    """`error_ratio(seconds before NOW)` -> share of the 100 events/s that are slow."""
    return counters(lambda t: {TOTAL: 100.0, SLOW: 100.0 * error_ratio(NOW - t)}, until=until, start=start)


def errors_between(ratio, newest, oldest):
    """`ratio` of events are slow from `oldest` to `newest` seconds before NOW, none otherwise."""
    return lambda ago: ratio if newest <= ago < oldest else 0.0


CASES = [
    # n, error ratio over time, expected (breaching, severity, burn over the reported long window, its factor)
    (1, lambda ago: 0.0, (False, Severity.PAGE, 0.0, 14.4)),
    (2, errors_between(0.20, 0, 2 * H), (True, Severity.PAGE, 20.0, 14.4)),  # 20x over 1h and 5m: page
    # a 5-minute total outage: the short window burns 100x, the long ones not enough: nothing
    (3, errors_between(1.0, 0, 300), (False, Severity.PAGE, round(100 * 300 / 3600, 6), 14.4)),
    # 20% for 50 minutes, over for 10: 1h still burns 16.7x, but the 5m window is clean: no page
    (4, errors_between(0.20, 600, 3600), (False, Severity.PAGE, round(20 * 50 / 60, 6), 14.4)),
    (
        5,
        errors_between(0.08, 0, 7 * H),
        (True, Severity.PAGE, 8.0, 6.0),
    ),  # 8x over 6h and 30m: the slower page
    (6, errors_between(0.04, 0, 2 * D), (True, Severity.TICKET, 4.0, 3.0)),  # 4x over 1d and 2h: ticket
    (7, lambda ago: 0.015, (True, Severity.TICKET, 1.5, 1.0)),  # 1.5x for 3 days: the last ticket pair
    (8, lambda ago: 0.01, (False, Severity.PAGE, 1.0, 14.4)),  # exactly the budget: burn 1.0 is not above 1x
]


@pytest.mark.parametrize(("n", "ratio", "expected"), CASES, ids=[f"case{c[0]}" for c in CASES])
def test_burn_rate_table(n, ratio, expected):
    [r] = rule().evaluate(slo(ratio), NOW)
    assert (r.breaching, r.severity, round(r.value, 6), r.bound) == expected, n


ONE_PAIR = [{"long": "1h", "short": "5m", "factor": 14.4, "severity": "page"}]


@pytest.mark.parametrize(
    ("n", "ratio", "breaching"),
    [(1, 0.144, False), (2, 0.1441, True), (3, 0.1439, False)],  # exactly at the factor does not breach
)
def test_exactly_at_the_factor(n, ratio, breaching):
    [r] = rule(windows=ONE_PAIR).evaluate(slo(lambda ago: ratio, start=NOW - 2 * H), NOW)
    assert r.breaching is breaching, n


def test_good_counter_instead_of_bad():
    history = counters(lambda t: {TOTAL: 100.0, GOOD: 80.0}, until=NOW, start=NOW - 2 * H)
    [r] = rule(bad=None, good=GOOD, windows=ONE_PAIR).evaluate(history, NOW)
    assert r.breaching and r.value == 20.0


def test_counter_resets_do_not_fake_or_hide_burn():
    history = slo(lambda ago: 0.2, start=NOW - 2 * H)
    # the exporter restarts 30 minutes ago: both counters start again from zero
    restart = NOW - 1800
    base = {s.metric: s.value for r in history if r.at == restart - 60 for s in r.samples}
    reset = [
        type(r)(
            r.collector,
            r.at,
            tuple(
                type(s)(
                    s.metric, s.labels, s.value - base[s.metric] - 6000 * (0.2 if s.metric == SLOW else 1)
                )
                for s in r.samples
            ),
        )
        if r.at >= restart
        else r
        for r in history
    ]
    assert min(s.value for r in reset for s in r.samples if r.at == restart) == 0.0
    [r] = rule(windows=ONE_PAIR).evaluate(reset, NOW)
    assert r.breaching and r.value == 20.0


def test_no_events_burn_nothing_and_no_samples_is_no_data():
    flat = counters(lambda t: {TOTAL: 0.0, SLOW: 0.0}, until=NOW, start=NOW - 2 * H)
    [r] = rule(windows=ONE_PAIR).evaluate(flat, NOW)
    assert not r.breaching and r.value == 0.0 and not r.no_data
    [r] = rule(windows=ONE_PAIR).evaluate(slo(lambda ago: 0.5, until=NOW - 2 * H, start=NOW - 3 * H), NOW)
    assert r.no_data and not r.breaching  # the newest samples are older than the long window
    [r] = rule().evaluate([], NOW)
    assert r.no_data


def test_bad_counter_not_created_yet_counts_zero():
    history = counters(lambda t: {TOTAL: 100.0}, until=NOW, start=NOW - 2 * H)
    [r] = rule(windows=ONE_PAIR).evaluate(history, NOW)
    assert not r.breaching and r.value == 0.0


def test_by_label_and_summary():
    a = counters(lambda t: {TOTAL: 100.0, SLOW: 30.0}, until=NOW, start=NOW - 2 * H, pipeline="spark")
    b = counters(lambda t: {TOTAL: 100.0, SLOW: 0.0}, until=NOW, start=NOW - 2 * H, pipeline="flink")
    history = [type(x)(x.collector, x.at, x.samples + y.samples) for x, y in zip(a, b, strict=True)]
    results = {r.labels: r for r in rule(windows=ONE_PAIR, by=["pipeline"]).evaluate(history, NOW)}
    assert results[L(pipeline="spark")].breaching and not results[L(pipeline="flink")].breaching
    assert results[L(pipeline="spark")].summary == (
        "slo: error budget burning 30.0x over 1h and 30.0x over 5m (bound 14.4x, objective 99.00%) for pipeline=spark"
    )


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"good": GOOD}, "exactly one of `good`"),
        ({"bad": None}, "exactly one of `good`"),
        ({"objective": 1.0}, "less than 1"),
        (
            {"windows": [{"long": "5m", "short": "1h", "factor": 2, "severity": "page"}]},
            "short window must be shorter",
        ),
    ],
)
def test_config_errors(kw, message):
    with pytest.raises(ValueError, match=message):
        rule(**kw)
