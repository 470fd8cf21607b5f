"""The capacity policy's correctness proof: one numbered case per rule of docs/scaling.md."""

from __future__ import annotations

from dataclasses import replace

import pytest

from watchtower.scale.config import TargetConfig
from watchtower.scale.inputs import Inputs, SinkSignals
from watchtower.scale.policy import Action, Memory, evaluate

NOW = 10_000.0
OLD = ((NOW - 1000, 0),)  # a recommendation outside every stabilization window


def target(**kw) -> TargetConfig:
    policy = {"rebalance_time": 0, **kw.pop("policy", {})}
    sink = kw.pop("sink", {})
    return TargetConfig.model_validate(
        {
            "group": "g",
            "topic": "t",
            "min_replicas": 1,
            "max_replicas": 10,
            **kw,
            "policy": policy,
            "sink": sink,
        }
    )


def inputs(**kw) -> Inputs:
    base = dict(
        at=NOW,
        partitions=6,
        end={p: 1000 for p in range(6)},
        input_rate=300.0,
        consume_rate=200.0,
        backlog=6000,
        min_backlog=5000,
        backlog_seconds=20.0,
        group_state="stable",
        members=2,
        span=60.0,
    )
    base.update(kw)
    return Inputs(**base)


def mem(**kw) -> Memory:
    return Memory(**{"recommendations": OLD, **kw})


def handed_over(ago: float) -> Memory:
    """Memory of a scale-up 1 -> 2 taken `ago` s before, partition 0 (900 behind) waiting on its handover."""
    return mem(last_action=Action(NOW - ago, 1, 2, 100.0, 100.0, waiting=((0, 900),)), capacity=100.0)


HANDOVER = {"policy": {"rebalance_time": 20, "cooldown": 10}}
SPARK = {"spark_trigger_interval": 0.5}
SHORT = {"policy": {"window": 15, "catch_up": 30, "busy_backlog": 300}}  # short window: 5 s
# One replica falling behind a step: 5 s into it, the 15 s window half measures the step
BEHIND = dict(
    members=1,
    input_rate=200.0,
    consume_rate=180.0,
    span=8.0,
    backlog=900,
    min_backlog=100,
    short_input_rate=300.0,
    short_consume_rate=200.0,
    backlog_growth=100.0,
    short_min_backlog=400,
    short_span=5.0,
)
# A burst on 12 partitions: the window still mostly sees the base rate
BURST = dict(
    partitions=12,
    end={p: 1000 for p in range(12)},
    input_rate=200.0,
    consume_rate=200.0,
    backlog=2000,
    min_backlog=0,
    short_input_rate=500.0,
    backlog_growth=300.0,
)
CASES = [
    # (id, current, inputs, memory, target kwargs, desired, veto, reason fragment)
    (
        "01 saturated: capacity = consume rate / replicas; need (300 + 6000/120) / (100 x 0.7) -> 5",
        2,
        inputs(),
        mem(),
        {},
        5,
        None,
        "need 350/s",
    ),
    (
        "01b the backlog drains in catch_up minus the rebalance: (300 + 6000/(120-60)) / 70 -> 6",
        2,
        inputs(),
        mem(),
        {"policy": {"rebalance_time": 60}},
        6,
        None,
        "6000 / 60s",
    ),
    (
        "01c ... the observed rebalance, once there is one, at most half of catch_up: (300 + 6000/60) / 70 -> 6",
        2,
        inputs(),
        mem(rebalance_seconds=100.0),
        {},
        6,
        None,
        "6000 / 60s",
    ),
    (
        "02 max step up bounds a large need",
        1,
        inputs(members=1, consume_rate=100.0, input_rate=1000.0),
        mem(),
        {"policy": {"max_step_up": 2}},
        3,
        None,
        "",
    ),
    (
        "03 consumers keep up, capacity never measured, no hint: hold",
        2,
        inputs(backlog=10, min_backlog=0, input_rate=200.0),
        mem(),
        {},
        2,
        None,
        "not measured",
    ),
    (
        "04 per_replica_rate hint sizes before any measurement: 200 / (50 x 0.7) -> 6",
        4,
        inputs(backlog=0, min_backlog=0, input_rate=200.0, consume_rate=100.0, members=4),
        mem(),
        {"policy": {"per_replica_rate": 50}},
        6,
        None,
        "50/s per replica",
    ),
    (
        "05 not saturated: the best measured capacity is kept; 50/s needs 1, a recent 3 holds the scale-down",
        3,
        inputs(backlog=0, min_backlog=0, input_rate=50.0, consume_rate=50.0, members=3),
        mem(capacity=100.0, recommendations=((NOW - 10, 3),)),
        {},
        3,
        None,
        "stabilizing",
    ),
    (
        "05b the recommendation is the highest of the window (settled at 2): down to it in one action",
        4,
        inputs(backlog=0, min_backlog=0, input_rate=100.0, consume_rate=100.0, members=4),
        mem(capacity=100.0, recommendations=((NOW - 10, 2), (NOW - 5, 1))),
        {},
        2,
        None,
        "",
    ),
    (
        "06 stabilization window passed: scale down by at most max_step_down",
        6,
        inputs(backlog=0, min_backlog=0, input_rate=50.0, consume_rate=50.0, members=6),
        mem(capacity=100.0),
        {},
        4,
        None,
        "",
    ),
    (
        "07 idle topic: no input, no backlog -> min_replicas",
        2,
        inputs(backlog=0, min_backlog=0, input_rate=0.0, consume_rate=0.0),
        mem(),
        {"min_replicas": 1},
        1,
        None,
        "idle",
    ),
    (
        "08 never above the partitions; the need beyond them is signalled",
        4,
        inputs(members=4, consume_rate=400.0, input_rate=5000.0),
        mem(),
        {},
        6,
        None,
        "partitions cap",
    ),
    ("09 never above max_replicas", 2, inputs(), mem(), {"max_replicas": 3}, 3, None, ""),
    (
        "10 rebalancing: no action",
        2,
        inputs(group_state="preparing_rebalancing"),
        mem(),
        {},
        5,
        "rebalancing",
        "held",
    ),
    (
        "10b the last action's handover is not over (no rebalance observed yet): no action",
        2,
        inputs(),
        mem(
            last_action=Action(NOW - 30, 1, 2, 100.0, 100.0, waiting=((0, 900),)),
            verified=True,
            capacity=100.0,
        ),
        {},
        5,
        "rebalancing",
        "handed over",
    ),
    (
        "11 cooldown after an action (need (300 + 6000/115) / 70 -> 6)",
        2,
        inputs(),
        mem(last_action=Action(NOW - 10, 1, 2, 100.0, 100.0), rebalance_seconds=5.0),
        {},
        6,
        "cooldown",
        "",
    ),
    (
        "12 cooldown is at least the observed rebalance x factor (50 s x 1.5 = 75 s > 60 s)",
        2,
        inputs(),
        mem(last_action=Action(NOW - 70, 1, 2, 100.0, 100.0), rebalance_seconds=50.0, verified=True),
        {},
        6,
        "cooldown",
        "75s",
    ),
    (
        "13 cooldown over: acts",
        2,
        inputs(),
        mem(last_action=Action(NOW - 80, 1, 2, 100.0, 100.0), rebalance_seconds=50.0, verified=True),
        {},
        6,
        None,
        "6000 / 70s",
    ),
    (
        "14 Redis write latency over the bound vetoes scale-up",
        2,
        inputs(sink=SinkSignals(redis_write_latency=0.6)),
        mem(),
        {},
        5,
        "sink_backpressure",
        "Redis write latency 600ms",
    ),
    (
        "15 ... but not scale-down",
        6,
        inputs(
            backlog=0,
            min_backlog=0,
            input_rate=50.0,
            consume_rate=50.0,
            members=6,
            sink=SinkSignals(redis_write_latency=0.6),
        ),
        mem(capacity=100.0),
        {},
        4,
        None,
        "",
    ),
    (
        "16 Spark batch over 2 x trigger vetoes scale-up",
        2,
        inputs(sink=SinkSignals(spark_batch_seconds=1.5)),
        mem(),
        {"sink": SPARK},
        5,
        "sink_backpressure",
        "Spark batch",
    ),
    (
        "17 Spark batch within 2 x trigger: no veto",
        2,
        inputs(sink=SinkSignals(spark_batch_seconds=0.9)),
        mem(),
        {"sink": SPARK},
        5,
        None,
        "",
    ),
    (
        "18 Flink backpressure vetoes scale-up",
        2,
        inputs(sink=SinkSignals(flink_backpressure=0.8)),
        mem(),
        {},
        5,
        "sink_backpressure",
        "Flink",
    ),
    (
        "19 a scale-up that did not raise the consume rate (+10/s of +200/s expected): further scale-up holds",
        4,
        inputs(members=4, consume_rate=210.0),
        mem(last_action=Action(NOW - 100, 2, 4, 200.0, 100.0), rebalance_seconds=5.0),
        {},
        6,
        "ineffective_step",
        "ineffective",
    ),
    (
        "20 a scale-up that raised it (+150/s >= 0.3 x 200/s) is verified; scaling goes on",
        4,
        inputs(members=4, consume_rate=350.0, input_rate=600.0),
        mem(last_action=Action(NOW - 100, 2, 4, 200.0, 100.0), rebalance_seconds=5.0),
        {},
        6,
        None,
        "verified",
    ),
    (
        "21 busy ratio: true rate = observed / busy (100/s at 0.5 busy -> 200/s per replica)",
        1,
        inputs(members=1, consume_rate=100.0, busy_ratio=0.5, backlog=0, min_backlog=0, input_rate=600.0),
        mem(),
        {},
        5,
        None,
        "200/s per replica",
    ),
    ("22 no readings in the window: nothing to decide on", 2, Inputs(at=NOW), mem(), {}, 2, "no_data", ""),
    (
        "23 a new controller holds its count for one stabilization window before scaling down",
        4,
        inputs(backlog=0, min_backlog=0, input_rate=50.0, consume_rate=50.0, members=4),
        None,
        {"policy": {"per_replica_rate": 100}},
        4,
        None,
        "",
    ),
    (
        "24 falling behind, no capacity known: the lower of the short window's and the window's consume "
        "rates sizes the step at once (urgent: (300 + 900/30) / (180 x 0.7) -> 3)",
        1,
        inputs(**BEHIND),
        mem(),
        SHORT,
        3,
        None,
        "falling behind",
    ),
    (
        "24b ... only once the short window has readings at this replica count: hold",
        1,
        inputs(**{**BEHIND, "short_span": 2.0}),
        mem(),
        SHORT,
        1,
        None,
        "not measured",
    ),
    (
        "24b2 ... only once the consume rate is flat (short window's 200/s > 1.25 x the window's 150/s): hold",
        1,
        inputs(**{**BEHIND, "consume_rate": 150.0}),
        mem(),
        SHORT,
        1,
        None,
        "not measured",
    ),
    (
        "24c ... only while the backlog stayed above busy_backlog over the short window: hold",
        1,
        inputs(**{**BEHIND, "short_min_backlog": 100}),
        mem(),
        SHORT,
        1,
        None,
        "not measured",
    ),
    (
        "25 remembered capacity, not urgent: the window's rate, (200 + 200/110) / 70 -> 3",
        2,
        inputs(**{**BURST, "backlog": 200}),
        mem(capacity=100.0, capacity_at=NOW - 10),
        {"policy": {"rebalance_time": 10, "max_step_up": 10}},
        3,
        None,
        "input 200/s",
    ),
    (
        "25b urgent: the short window's rate and the backlog grown by the handover, "
        "(500 + (2000 + 300 x 10)/110) / 70 -> 8",
        2,
        inputs(**BURST),
        mem(capacity=100.0, capacity_at=NOW - 10),
        {"policy": {"rebalance_time": 10, "max_step_up": 10}},
        8,
        None,
        "urgent: backlog 2000 growing 300/s",
    ),
    (
        "26 urgent, the last action's handover outlasted rebalance_time: not held "
        "((300 + (6000 + 100 x 20)/100) / 70 -> 6)",
        2,
        inputs(backlog_growth=100.0),
        handed_over(30),
        HANDOVER,
        6,
        None,
        "not waiting for it",
    ),
    (
        "26b ... not before rebalance_time",
        2,
        inputs(backlog_growth=100.0),
        handed_over(10),
        HANDOVER,
        6,
        "rebalancing",
        "handed over",
    ),
    (
        "26c ... nor while the group itself is rebalancing",
        2,
        inputs(backlog_growth=100.0, group_state="completing_rebalancing"),
        handed_over(30),
        HANDOVER,
        6,
        "rebalancing",
        "completing_rebalancing",
    ),
    (
        "26d ... nor within the cooldown",
        2,
        inputs(backlog_growth=100.0),
        handed_over(30),
        {"policy": {"rebalance_time": 20, "cooldown": 40}},
        6,
        "cooldown",
        "cooldown 40s",
    ),
    (
        "26e ... and a slow sink still vetoes it",
        2,
        inputs(backlog_growth=100.0, sink=SinkSignals(redis_write_latency=0.6)),
        handed_over(30),
        HANDOVER,
        6,
        "sink_backpressure",
        "Redis",
    ),
    (
        "27 a backlog that drains within catch_up is not urgent (6000 at -100/s: 60 s < 120 s): "
        "the window's rate, -> 5",
        2,
        inputs(short_input_rate=1000.0, backlog_growth=-100.0),
        mem(),
        {},
        5,
        None,
        "input 300/s",
    ),
    (
        "27b ... one that drains slower is (6000 at -10/s: 600 s): (1000 + 6000/120) / 70 -> 6 (step 4)",
        2,
        inputs(short_input_rate=1000.0, backlog_growth=-10.0),
        mem(),
        {},
        6,
        None,
        "drains in 600s",
    ),
    (
        "27c ... and so is a backlog below busy_backlog never",
        2,
        inputs(backlog=500, min_backlog=0, short_input_rate=1000.0, backlog_growth=50.0),
        mem(capacity=100.0),
        {},
        5,
        None,
        "input 300/s",
    ),
]


@pytest.mark.parametrize(
    ("case", "current", "inp", "memory", "tkw", "desired", "veto", "reason"),
    CASES,
    ids=[c[0].split()[0] for c in CASES],
)
def test_policy_case(case, current, inp, memory, tkw, desired, veto, reason):
    d, _ = evaluate(inp, NOW, current, target(**tkw), memory, "t1")
    assert (d.desired, d.veto) == (desired, veto), (case, d.reason)
    assert reason in d.reason, (case, d.reason)
    assert d.changes == (desired != current and veto is None)


def test_partitions_cap_is_its_own_signal():
    d, _ = evaluate(inputs(members=4, consume_rate=400.0, input_rate=5000.0), NOW, 4, target(), mem())
    assert d.inputs["partitions_capped"] is True and d.inputs["required"] > 6 and d.desired == 6
    d, _ = evaluate(inputs(), NOW, 2, target(), mem())
    assert d.inputs["partitions_capped"] is False


def test_memory_learns_capacity_while_saturated_and_keeps_the_best_lower_bound_otherwise():
    _, m = evaluate(inputs(), NOW, 2, target(), mem())
    assert m.capacity == pytest.approx(100.0)
    _, m2 = evaluate(inputs(backlog=0, min_backlog=0, consume_rate=60.0), NOW + 15, 2, target(), m)
    assert m2.capacity == pytest.approx(100.0)  # 30/s per replica while keeping up says nothing new
    _, m3 = evaluate(inputs(consume_rate=120.0), NOW + 30, 2, target(), m2)
    assert m3.capacity == pytest.approx(60.0)  # saturated again, slower: the fresh measurement wins


def test_rebalance_time_is_observed_when_members_match_and_the_group_is_stable():
    m = mem(last_action=Action(NOW - 30, 2, 5, 200.0, 100.0))
    _, m1 = evaluate(inputs(members=2, group_state="completing_rebalancing"), NOW - 20, 5, target(), m)
    assert m1.rebalance_seconds is None
    _, m2 = evaluate(inputs(members=5), NOW, 5, target(), m1)
    assert m2.rebalance_seconds == pytest.approx(30.0)


def test_rebalance_is_over_only_once_every_partition_with_lag_committed_again():
    m = mem(last_action=Action(NOW - 30, 2, 5, 200.0, 100.0, waiting=((0, 100), (1, 200))))
    handing_over = inputs(members=5, committed={0: 150, 1: 200})
    _, m1 = evaluate(handing_over, NOW, 5, target(), m)
    assert m1.rebalance_seconds is None  # partition 1 has not moved since the action
    d, _ = evaluate(inputs(members=5, consume_rate=50.0), NOW, 5, target(), m1)
    assert d.inputs["capacity_per_replica"] is None  # no measurement while it is not over
    _, m2 = evaluate(inputs(members=5, committed={0: 150, 1: 201}), NOW, 5, target(), m1)
    assert m2.rebalance_seconds == pytest.approx(30.0)
    _, m3 = evaluate(
        handing_over, NOW + 70, 5, target(), m1
    )  # verify_after (90 s) since the action: give up waiting
    assert m3.rebalance_seconds == pytest.approx(100.0)


def test_acted_starts_cooldown_and_verification():
    d, m = evaluate(inputs(), NOW, 2, target(), mem(verified=False))
    m = m.acted(d)
    assert m.last_action == Action(NOW, 2, 5, 200.0, pytest.approx(100.0)) and m.verified is None
    d2, _ = evaluate(inputs(members=5), NOW + 5, 5, target(), m)
    assert d2.veto in (None, "cooldown")
    assert replace(m, rebalance_seconds=1.0).rebalance_seconds == 1.0


def test_a_stale_capacity_gives_way_to_the_short_window_rate_when_the_consumers_fall_behind():
    t = target(**SHORT)
    behind = inputs(**{**BEHIND, "members": 2, "short_consume_rate": 100.0, "consume_rate": 110.0})
    _, m = evaluate(behind, NOW, 2, t, mem(capacity=400.0, capacity_at=NOW - 60))
    assert m.capacity == pytest.approx(400.0)  # fresh: kept (a short window is noisier than a window)
    d, m = evaluate(behind, NOW, 2, t, mem(capacity=400.0, capacity_at=NOW - 4000))
    assert m.capacity == pytest.approx(50.0) and m.capacity_at == NOW  # stale: re-measured
    assert d.inputs["capacity_source"] == "short window"
    keeping_up = inputs(backlog=0, min_backlog=0, input_rate=50.0, consume_rate=50.0)
    _, m2 = evaluate(keeping_up, NOW + 10, 2, t, mem(capacity=400.0, capacity_at=NOW - 4000))
    assert m2.capacity == pytest.approx(400.0) and m2.capacity_at == NOW - 4000  # stale, still sizing


def test_a_short_window_longer_than_the_window_is_refused_naming_the_fix():
    with pytest.raises(ValueError, match=r"short_window \(30s\) is longer than policy.window \(15s\)"):
        target(policy={"window": 15, "short_window": 30})
