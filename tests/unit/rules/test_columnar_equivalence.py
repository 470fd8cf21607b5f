"""The columnar rule kinds give what the sample-at-a-time reference (tests/unit/rules/reference.py) gives.

Randomized histories with the edges that matter: several collectors and readings at equal instants, gaps
(missing readings and missing series), partitions that disappear and appear, counter resets, plateaus, ties,
lag at zero; every kind with random settings, at several `now`s, on a plain list and on the daemon's indexed
view (reused across evaluations as the history slides). Values may differ from the reference only in the
last bits (numpy adds in another order); everything else must be equal.
"""

from __future__ import annotations

import math
import random

import pytest
import reference

from watchtower.alerting.model import RuleResult
from watchtower.core.types import Reading, Sample, labels
from watchtower.rules.kinds import KINDS
from watchtower.rules.series import HistoryIndex

T0 = 1_700_000_000.0
LAG, COMMITTED, SECONDS = (
    "watchtower_consumer_lag_messages",
    "watchtower_consumer_committed_offset",
    "watchtower_consumer_lag_seconds",
)
TOTAL, SLOW = "watchtower_e2e_events_total", "watchtower_e2e_events_slow_total"


def history(rng: random.Random, steps: int = 40) -> list[Reading]:
    groups = ["orders-a", "orders-b", "pay"][: rng.randint(1, 3)]
    parts = {g: rng.randint(1, 4) for g in groups}
    committed = {(g, p): rng.randint(0, 50) for g in groups for p in range(6)}
    lag = dict.fromkeys(committed, 0)
    counters = {"spark": [0.0, 0.0], "flink": [0.0, 0.0]}
    out: list[Reading] = []
    at = T0
    for _ in range(steps):
        at += rng.choice([10.0, 15.0, 15.0, 30.0, 60.0])
        if rng.random() < 0.1:
            continue  # the collector missed a cycle: a gap
        samples = []
        for g in groups:
            if rng.random() < 0.08:
                parts[g] = max(1, min(6, parts[g] + rng.choice([-1, 1])))  # partitions move away or arrive
            for p in range(parts[g]):
                key = (g, p)
                if rng.random() < 0.05:
                    continue  # this series is missing from this reading
                move = rng.choice([0, 0, 0, 5, 20, -10]) if rng.random() < 0.9 else 0
                committed[key] = max(0, committed[key] + move)
                lag[key] = max(0, lag[key] + rng.choice([0, 0, 3, 10, -7, -lag[key]]))
                lbl = labels(group=g, topic="orders" if g != "pay" else "payments", partition=p)
                samples.append(Sample(COMMITTED, lbl, float(committed[key])))
                samples.append(Sample(LAG, lbl, float(lag[key])))
                samples.append(Sample(SECONDS, lbl, lag[key] / 4))
        rng.shuffle(samples)
        out.append(Reading("kafka_lag", at, tuple(samples)))
        e2e = []
        for source, c in counters.items():
            if source == "flink" and at < T0 + 200:
                continue  # a counter that appears later
            if rng.random() < 0.05:
                c[0], c[1] = 0.0, 0.0  # the exporter restarted: counters reset
            n = rng.choice([0, 50, 100])
            c[0] += n
            c[1] += rng.randint(0, n // 5) if n else 0
            e2e += [Sample(TOTAL, labels(source=source), c[0]), Sample(SLOW, labels(source=source), c[1])]
        if rng.random() < 0.3:
            e2e.append(
                Sample(LAG, labels(group="orders-a", topic="orders", partition=0), float(rng.randint(0, 40)))
            )
        out.append(Reading("e2e", at if rng.random() < 0.8 else at + 5, tuple(e2e)))
    rng.shuffle(out)
    return out


def rules(rng: random.Random) -> list:
    sel = rng.choice(
        [
            LAG,
            f'{LAG}{{topic="orders"}}',
            f'{LAG}{{group=~"orders-.*"}}',
            f'{LAG}{{group!="pay", partition!~"[3-5]"}}',
            SECONDS,
        ]
    )
    agg = rng.choice(["max", "min", "sum", "avg", "none"])
    by = [] if agg == "none" else rng.choice([[], ["group"], ["group", "topic"], ["partition"], ["nothere"]])
    common = {"selector": sel, "aggregate": agg, "by": by}
    op = rng.choice([">", ">=", "<", "<=", "==", "!="])
    window = rng.choice(["1m", "2m", "5m", "10m"])
    made = [
        (
            "threshold",
            {
                **common,
                "op": op,
                "bound": rng.choice([0, 5, 10, 20]),
                "stale_after": rng.choice(["30s", "2m", "5m"]),
            },
        ),
        (
            "growth",
            {
                **common,
                "factor": rng.choice([1.5, 2]),
                "window": window,
                "floor": rng.choice([1, 5]),
                "min_value": rng.choice([0, 10]),
            },
        ),
        (
            "time_to_breach",
            {
                **common,
                "op": rng.choice([">", ">=", "<", "<="]),
                "threshold": rng.choice([0, 30, 100]),
                "window": window,
                "horizon": rng.choice(["1m", "15m"]),
                "min_points": rng.choice([2, 3, 5]),
            },
        ),
        (
            "rate",
            {
                "selector": rng.choice([COMMITTED, TOTAL, f'{COMMITTED}{{group="orders-a"}}']),
                "aggregate": rng.choice(["sum", "max", "avg", "none"]),
                "op": op,
                "bound": rng.choice([0, 10, 60]),
                "window": window,
            },
        ),
        (
            "throughput_floor",
            {
                "output": {
                    "selector": rng.choice([COMMITTED, LAG]),
                    "counter": rng.random() < 0.5,
                    "aggregate": rng.choice(["sum", "max"]),
                },
                "input": {"selector": rng.choice([TOTAL, LAG]), "counter": rng.random() < 0.5},
                "floor": rng.choice([1, 10]),
                "window": window,
                "by": rng.choice([[], ["group"], ["source"]]),
            },
        ),
        (
            "consumer_status",
            {
                "by": rng.choice([["group"], ["group", "topic"], ["group", "topic", "partition"], []]),
                "window": rng.choice(["1m", "2m", "5m"]),
                "stop_after": rng.choice(["3m", "5m", "15m"]),
                "min_points": rng.choice([2, 3]),
                "stale_after": rng.choice(["1m", "5m"]),
                "committed": rng.choice([COMMITTED, f'{COMMITTED}{{topic="orders"}}']),
            },
        ),
        (
            "burn_rate",
            {
                "total": TOTAL,
                **({"bad": SLOW} if rng.random() < 0.7 else {"good": SLOW}),
                "objective": rng.choice([0.9, 0.99]),
                "by": rng.choice([[], ["source"]]),
                "windows": [
                    {"long": "5m", "short": "1m", "factor": 2, "severity": "page"},
                    {"long": "10m", "short": "2m", "factor": 1, "severity": "ticket"},
                ],
            },
        ),
    ]
    return [
        KINDS[kind].model_validate({"name": f"{kind}-{i}", "kind": kind, **spec})
        for i, (kind, spec) in enumerate(made)
    ]


def same(a: list[RuleResult], b: list[RuleResult]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x == y:
            continue
        if (x.value is None) != (y.value is None) or (
            x.value is not None and not math.isclose(x.value, y.value, rel_tol=1e-9, abs_tol=1e-9)
        ):
            return False
        # only the value's last bits differ: everything else (but the summary that prints it) must be equal
        fields = ("rule", "labels", "breaching", "bound", "severity", "no_data", "runbook", "dashboard")
        if any(getattr(x, f) != getattr(y, f) for f in fields):
            return False
        if [o.labels for o in x.offenders] != [o.labels for o in y.offenders]:
            return False
    return True


@pytest.mark.parametrize("seed", range(40))
def test_columnar_kinds_agree_with_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    h = history(rng)
    index = HistoryIndex()
    ordered = sorted(h, key=lambda r: r.at)
    for rule in rules(rng):
        for k in (len(ordered) // 2, len(ordered)):
            window = ordered[max(0, k - 50) : k]  # the daemon's history slides: the index keeps what it can
            view = index.view(window)
            for now in (window[-1].at, window[-1].at + 7, window[-1].at + 400, window[len(window) // 2].at):
                want = reference.evaluate(rule, window, now)
                assert same(rule.evaluate(window, now), want), (rule.name, now)
                assert same(rule.evaluate(view, now), want), (rule.name, now, "indexed")


def test_series_sets_are_compacted_when_partitions_churn() -> None:
    """Series that left the history do not pile up: the set starts afresh and results stay the same."""
    index = HistoryIndex()
    rule = KINDS["threshold"].model_validate(
        {"name": "t", "selector": f'{LAG}{{group="g"}}', "by": ["group"], "bound": 5}
    )
    readings = [
        Reading(
            "kafka_lag",
            T0 + 10 * i,
            tuple(Sample(LAG, labels(group="g", partition=i * 300 + p), float(p % 7)) for p in range(300)),
        )
        for i in range(20)
    ]
    for k in range(1, len(readings) + 1):
        window = readings[max(0, k - 3) : k]
        view = index.view(window)
        assert same(rule.evaluate(view, window[-1].at), reference.evaluate(rule, window, window[-1].at))
    assert len(index._sets[LAG]) <= 2 * 900  # 6,000 series were seen, at most 900 are in any history
