"""Windowing the lag collector's readings: rates over the policy's window, stuck partitions, group state."""

from __future__ import annotations

import pytest

from watchtower.core.history import History
from watchtower.core.types import Reading, Sample
from watchtower.scale.inputs import gather, stuck_partitions


def reading(
    at: float, committed: dict[int, int], end: dict[int, int], state: str = "stable", members: int = 2
) -> Reading:
    samples = []
    for p, e in end.items():
        samples.append(
            Sample(
                "watchtower_topic_partition_high_watermark", (("partition", str(p)), ("topic", "t")), float(e)
            )
        )
    for p, c in committed.items():
        gl = (("group", "g"), ("partition", str(p)), ("topic", "t"))
        samples.append(Sample("watchtower_consumer_committed_offset", gl, float(c)))
        samples.append(Sample("watchtower_consumer_lag_messages", gl, float(max(0, end[p] - c))))
        samples.append(Sample("watchtower_consumer_lag_seconds", gl, float(end[p] - c) / 100))
    samples.append(Sample("watchtower_consumer_group_state", (("group", "g"), ("state", state)), 1.0))
    samples.append(Sample("watchtower_consumer_group_state", (("group", "g"), ("state", "empty")), 0.0))
    samples.append(Sample("watchtower_consumer_group_members", (("group", "g"),), float(members)))
    # another group on the same topic must not leak in
    samples.append(
        Sample(
            "watchtower_consumer_committed_offset",
            (("group", "other"), ("partition", "0"), ("topic", "t")),
            0.0,
        )
    )
    return Reading("kafka_lag", at, tuple(samples))


def history(rows) -> History:
    h = History(100)
    for r in rows:
        h.append(r)
    return h


def test_rates_are_deltas_over_the_window_and_backlog_is_the_latest_lag():
    # 3 partitions; producers write 10/s per partition, consumers commit 5/s per partition.
    rows = [
        reading(t, {p: 5 * t for p in range(3)}, {p: 10 * t for p in range(3)}) for t in range(0, 121, 10)
    ]
    inp = gather(history(rows), 120, group="g", topic="t", window=60, stuck_after=60)
    assert inp.partitions == 3 and inp.span == 60
    assert inp.input_rate == pytest.approx(30.0) and inp.consume_rate == pytest.approx(15.0)
    assert inp.backlog == 3 * 600 and inp.min_backlog == 3 * 300
    assert inp.backlog_seconds == pytest.approx(6.0)
    assert (inp.group_state, inp.members, inp.stuck) == ("stable", 2, ())


def test_rates_since_the_last_action_only():
    rows = [reading(t, {0: (5 if t < 100 else 50) * t}, {0: 100 * t}) for t in range(0, 121, 10)]
    inp = gather(history(rows), 120, group="g", topic="t", window=60, stuck_after=60, rates_since=100)
    assert inp.span == 20 and inp.consume_rate == pytest.approx((50 * 120 - 50 * 100) / 20)


def test_one_stuck_partition_is_excluded_from_rates_and_backlog():
    rows = [reading(t, {0: 7, 1: 5 * t, 2: 5 * t}, {0: 500, 1: 10 * t, 2: 10 * t}) for t in range(0, 121, 10)]
    inp = gather(history(rows), 120, group="g", topic="t", window=60, stuck_after=60)
    assert inp.stuck == (0,)
    assert (
        inp.backlog == 2 * 600
        and inp.consume_rate == pytest.approx(10.0)
        and inp.input_rate == pytest.approx(20.0)
    )


@pytest.mark.parametrize(
    ("case", "series", "lag", "expected"),
    [
        (
            "1 moved elsewhere, still with lag here",
            [(0, {0: 5, 1: 0}), (70, {0: 5, 1: 9})],
            {0: 3, 1: 0},
            (0,),
        ),
        (
            "2 every partition still: the group stalls, nothing excluded",
            [(0, {0: 5, 1: 1}), (70, {0: 5, 1: 1})],
            {0: 3, 1: 3},
            (),
        ),
        ("3 still but no lag: idle, not stuck", [(0, {0: 5, 1: 0}), (70, {0: 5, 1: 9})], {0: 0, 1: 0}, ()),
        ("4 not still for stuck_after yet", [(30, {0: 5, 1: 0}), (70, {0: 5, 1: 9})], {0: 3, 1: 0}, ()),
    ],
)
def test_stuck_partitions(case, series, lag, expected):
    assert stuck_partitions(series, lag, 70, 60) == expected, case


def test_no_readings_no_data_and_rebalancing_state_is_read():
    assert not gather(History(5), 10, group="g", topic="t", window=60, stuck_after=60).has_data
    rows = [
        reading(0, {0: 0}, {0: 10}),
        reading(10, {0: 5}, {0: 20}, state="preparing_rebalancing", members=1),
    ]
    inp = gather(history(rows), 10, group="g", topic="t", window=60, stuck_after=60)
    assert (inp.group_state, inp.members) == ("preparing_rebalancing", 1)


def test_decide_from_the_history_and_the_sink_signals_of_other_collectors():
    from watchtower.scale.config import TargetConfig
    from watchtower.scale.inputs import sink_signals
    from watchtower.scale.policy import decide

    # one replica, 3 partitions: 5/s committed per partition while 10/s arrive, backlog far above busy_backlog
    rows = [
        reading(t, {p: 5 * t for p in range(3)}, {p: 10 * t + 2000 for p in range(3)})
        for t in range(0, 121, 10)
    ]
    h = history(rows)
    target = TargetConfig(
        group="g", topic="t", max_replicas=3, policy={"window": 60, "busy_backlog": 100, "rebalance_time": 0}
    )
    d = decide(h, 120, 1, target)
    # capacity 15/s per replica; need 30 + 7800/120 = 95/s -> ceil(95 / 10.5) = 10, capped at 3 partitions
    assert (d.desired, d.veto, d.inputs["partitions_capped"]) == (3, None, True), d.reason
    h.append(
        Reading(
            "spark_progress",
            120,
            (Sample("watchtower_checkpoint_duration_seconds", (("engine", "spark"), ("job", "j")), 4.0),),
        )
    )
    h.append(
        Reading(
            "flink",
            120,
            (
                Sample(
                    "watchtower_backpressure_ratio", (("engine", "flink"), ("job", "j"), ("vertex", "v")), 0.9
                ),
            ),
        )
    )
    sink = sink_signals(h, 125, 0.01, max_age=30)
    assert (sink.spark_batch_seconds, sink.flink_backpressure, sink.redis_write_latency) == (4.0, 0.9, 0.01)
    assert sink_signals(h, 200, None, max_age=30).spark_batch_seconds is None  # too old to count


def test_short_window_slopes_smooth_batch_commits_and_the_growth_is_seen_during_a_handover():
    # One partition: 300/s produced; the consumer commits 500 at a time every 2.5 s (200/s), read every 1 s.
    rows = [reading(t, {0: 500 * int(t / 2.5)}, {0: 300 * t + 1000}) for t in range(0, 31)]
    inp = gather(history(rows), 30, group="g", topic="t", window=15, stuck_after=60)
    assert inp.short_span == 5 and inp.short_input_rate == pytest.approx(300.0)
    assert inp.short_consume_rate == pytest.approx(200.0, rel=0.25)  # endpoints alone: 100 to 300
    assert inp.backlog_growth == pytest.approx(100.0, abs=50)
    assert inp.short_min_backlog == min(300 * t + 1000 - 500 * int(t / 2.5) for t in range(25, 31))
    during = gather(history(rows), 30, group="g", topic="t", window=15, stuck_after=60, rates_since=31)
    assert during.short_consume_rate is None and during.backlog_growth == inp.backlog_growth
    longer = gather(history(rows), 30, group="g", topic="t", window=15, stuck_after=60, short_window=10)
    assert longer.short_span == 10
