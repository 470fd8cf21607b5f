"""Mode keda: KEDA's Kafka scaler (getTotalLag) and the HPA behaviour behind it, case by case."""

from __future__ import annotations

import pytest

from watchtower.scale.config import TargetConfig
from watchtower.scale.inputs import Inputs
from watchtower.scale.keda_mode import total_lag
from watchtower.scale.policy import Memory, evaluate

NOW = 5000.0


def target(**keda) -> TargetConfig:
    mn = keda.pop("min_replicas", 1)
    mx = keda.pop("max_replicas", 100)
    return TargetConfig(group="g", topic="t", mode="keda", min_replicas=mn, max_replicas=mx, keda=keda)


def lags(*per_partition: int | None) -> Inputs:
    end = {p: 1000 for p in range(len(per_partition))}
    committed = {p: 1000 - lag for p, lag in enumerate(per_partition) if lag is not None}
    return Inputs(at=NOW, partitions=len(end), end=end, committed=committed)


CASES = [
    # (id, inputs, current, keda/target kwargs, memory, desired, total lag)
    (
        "01 ceil(55 / 10) = 6, scale-up policy allows max(2x, +4) = 5 from 1",
        lags(10, 10, 10, 10, 10, 5),
        1,
        {},
        None,
        5,
        55,
    ),
    ("02 ceil(55 / 10) = 6 from 3", lags(10, 10, 10, 10, 10, 5), 3, {}, None, 6, 55),
    ("03 capped at partitions x threshold (1000 -> 60)", lags(500, 500, 0, 0, 0, 0), 6, {}, None, 6, 60),
    (
        "04 allowIdleConsumers: uncapped, 100 replicas",
        lags(500, 500, 0, 0, 0, 0),
        50,
        {"allow_idle_consumers": True},
        None,
        100,
        1000,
    ),
    (
        "05 limitToPartitionsWithLag: capped at 2 x 10",
        lags(500, 500, 0, 0, 0, 0),
        2,
        {"limit_to_partitions_with_lag": True, "allow_idle_consumers": True},
        None,
        2,
        20,
    ),
    (
        "06 excludePersistentLag: a partition on the previous poll's offset counts 0",
        lags(500, 20, 0, 0, 0, 0),
        2,
        {"exclude_persistent_lag": True},
        Memory(keda_previous=((0, 500),)),
        2,
        20,
    ),
    ("07 no committed offset: lag 1 per partition", lags(None, None, None, 0, 0, 0), 1, {}, None, 1, 3),
    (
        "08 scaleToZeroOnInvalidOffset: lag 0",
        lags(None, None, None, 0, 0, 0),
        1,
        {"scale_to_zero_on_invalid_offset": True},
        None,
        1,
        0,
    ),
    ("09 within the HPA tolerance: 105 / (10 x 10) = 1.05", lags(*[10] * 10, 5), 10, {}, None, 10, 105),
    (
        "10 scale-down held by the 300 s stabilization window",
        lags(10, 0, 0, 0, 0, 0),
        6,
        {},
        Memory(recommendations=((NOW - 100, 6),)),
        6,
        10,
    ),
    (
        "11 stabilization window passed: down to ceil(10 / 10)",
        lags(10, 0, 0, 0, 0, 0),
        6,
        {},
        Memory(recommendations=((NOW - 400, 6),)),
        1,
        10,
    ),
    (
        "12 inactive with min 0: zero",
        lags(0, 0, 0, 0, 0, 0),
        1,
        {"min_replicas": 0},
        Memory(recommendations=((NOW - 400, 1),)),
        0,
        0,
    ),
    (
        "13 inactive with min 1: the HPA keeps 1",
        lags(0, 0, 0, 0, 0, 0),
        3,
        {},
        Memory(recommendations=((NOW - 400, 3),)),
        1,
        0,
    ),
]


@pytest.mark.parametrize(
    ("case", "inp", "current", "kw", "memory", "desired", "lag"), CASES, ids=[c[0][:2] for c in CASES]
)
def test_keda_case(case, inp, current, kw, memory, desired, lag):
    d, m = evaluate(inp, NOW, current, target(**kw), memory or Memory(), "t")
    assert (d.desired, d.inputs["total_lag"]) == (desired, lag), (case, d.reason)
    assert d.veto is None
    assert dict(m.keda_previous) == dict(inp.committed)


def test_persistent_lag_still_counts_for_activation():
    t = target(exclude_persistent_lag=True, min_replicas=0)
    lag, with_persistent, with_lag, _ = total_lag(lags(7, 0), t.keda, {0: 993})
    assert (lag, with_persistent, with_lag) == (0, 7, 0)
    d, _ = evaluate(lags(7, 0), NOW, 1, t, Memory(keda_previous=((0, 993),)))
    assert d.inputs["active"] is True and d.desired == 1


def test_scale_up_policy_counts_from_the_replicas_at_the_start_of_the_period():
    t = target()
    m = Memory(
        keda_scale_ups=((NOW - 5, 2),)
    )  # 2 -> 6 five seconds ago: this period allows max(4, 6) = 6 from 2
    d, _ = evaluate(lags(*[100] * 6), NOW, 6, t, m)
    assert d.desired == 6 and d.inputs["partitions_capped"] is True
