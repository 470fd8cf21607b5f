"""consumer_status: Burrow's partition rules, as a table over sampled offsets and lag (one sample a minute).

Window 5m, stop_after 15m, min_points 3. `now` is the time of the last sample unless stated.
"""

from __future__ import annotations

import pytest
from rule_histories import LAG, T0, L, merge, table

from watchtower.alerting.model import Severity
from watchtower.rules.kinds.consumer_status import ConsumerStatusRule, Status, partition_status

COMMITTED = "watchtower_consumer_committed_offset"


def pts(values, start=T0):
    return [(start + 60 * i, float(v)) for i, v in enumerate(values)]


def status(offsets, lags, now=None):
    o, lg = pts(offsets), pts(lags)
    return partition_status(
        o, lg, now if now is not None else o[-1][0], window=300, stop_after=900, min_points=3
    )


CASES = [
    # n, committed offsets, lag, expected
    (1, [500] * 30, [0] * 30, Status.OK),  # idle topic: lag 0, offsets still (half an hour)
    (2, [100, 200, 300, 400, 500, 600], [50, 80, 40, 90, 60, 70], Status.OK),  # busy and keeping up
    (3, [100, 200, 300, 400, 500, 600], [10, 20, 30, 40, 50, 60], Status.WARN),  # moving, but lag never falls
    (4, [100, 200, 300, 400, 500, 600], [10, 20, 30, 25, 50, 60], Status.OK),  # lag fell once in the window
    (5, [100, 200, 300, 400, 500, 600], [10, 10, 10, 10, 10, 10], Status.OK),  # steady lag is not growing lag
    (6, [100, 200], [10, 20], Status.OK),  # too few samples to call a trend
    (7, [700] * 6, [100] * 6, Status.STALL),  # not moved for 5m (the window) with lag
    (8, [700] * 5, [100] * 5, Status.OK),  # not moved for 4m: not yet a stall
    (9, [700] * 17, [100] * 17, Status.STOP),  # not moved for 16m > stop_after
    (10, [700] * 16, [100] * 16, Status.STALL),  # exactly 15m: STOP needs longer than stop_after
    (11, [100, 200, 150, 250, 350, 450], [10, 10, 60, 60, 60, 60], Status.REWIND),  # offset went back
    (12, [100, 50, 150, 250, 350, 450, 550, 650], [10] * 8, Status.OK),  # a rewind older than the window
    (13, [500] * 40, [0] * 39 + [1], Status.OK),  # idle for 39m, first message arrives: not STOP
    (14, [500] * 40, [0] * 33 + [5] * 7, Status.STALL),  # busy 6m and nothing committed: STALL
    (15, [500] * 40, [0] * 20 + [5] * 20, Status.STOP),  # busy 19m and nothing committed: STOP
    (16, [700] * 20, [100] * 19 + [0], Status.OK),  # caught up now: never an error with lag 0
    (17, [700], [100], Status.OK),  # a new partition: one sample
    (18, [100, 100, 100, 200, 200, 200], [5, 6, 7, 8, 9, 10], Status.WARN),  # moving slowly, lag only grows
]


@pytest.mark.parametrize(("n", "offsets", "lags", "expected"), CASES, ids=[f"case{c[0]}" for c in CASES])
def test_partition_status_table(n, offsets, lags, expected):
    assert status(offsets, lags) is expected, n


def test_stop_is_reached_by_time_alone_without_new_samples():
    # offsets still since T0; the clock runs on past the last sample to 15m 1s
    assert status([700] * 6, [100] * 6, now=T0 + 901) is Status.STOP


def group_history(parts: dict[str, tuple[list, list]], group="g", topic="orders"):
    offsets = table(COMMITTED, {p: o for p, (o, _) in parts.items()}, group=group, topic=topic)
    lags = table(LAG, {p: lg for p, (_, lg) in parts.items()}, group=group, topic=topic)
    return merge(offsets, lags)


def rule(**kw):
    return ConsumerStatusRule.model_validate({"name": "consumer", **kw})


def test_group_rolls_up_to_the_worst_partition_with_its_severity():
    history = group_history(
        {
            "0": ([100, 200, 300, 400, 500, 600], [10, 20, 30, 40, 50, 60]),  # WARN
            "1": ([700] * 6, [900] * 6),  # STALL
            "2": ([500] * 6, [0] * 6),  # idle
        }
    )
    [r] = rule().evaluate(history, T0 + 300)
    assert r.labels == L(group="g") and r.breaching and r.severity is Severity.PAGE
    assert r.value == 960  # total lag of the group
    assert [dict(o.labels)["partition"] for o in r.offenders] == ["1", "0"]
    assert r.summary == "consumer: consumer g is STALL (orders/1 STALL, orders/0 WARN); lag 960 messages"


def test_statuses_left_out_of_severities_do_not_alert():
    history = group_history({"0": ([100, 200, 300, 400, 500, 600], [10, 20, 30, 40, 50, 60])})
    [r] = rule(severities={"STALL": "page", "STOP": "page"}).evaluate(history, T0 + 300)
    assert not r.breaching and r.offenders == ()


def test_idle_group_is_ok_and_a_vanished_partition_drops_out():
    history = group_history(
        {
            "0": ([500] * 6, [0] * 6),
            "1": ([700] * 4 + [None, None], [900] * 4 + [None, None]),  # stalled, then reassigned away: gone
        }
    )
    [r] = rule().evaluate(history, T0 + 300)
    assert not r.breaching and r.value == 0


def test_by_partition_gives_one_result_per_partition_and_no_data_without_offsets():
    history = group_history({"0": ([700] * 6, [900] * 6), "1": ([1, 2, 3, 4, 5, 6], [0] * 6)})
    results = rule(by=["group", "topic", "partition"]).evaluate(history, T0 + 300)
    assert {r.labels: r.breaching for r in results} == {
        L(group="g", topic="orders", partition="0"): True,
        L(group="g", topic="orders", partition="1"): False,
    }
    [r] = rule().evaluate([], T0)
    assert r.no_data and not r.breaching


def test_stale_offsets_are_no_data_not_stop():
    # the collector went quiet: without stale_after every lagging partition would look STOPped 15m later
    history = group_history({"0": ([700] * 6, [900] * 6)})
    [r] = rule().evaluate(history, T0 + 300 + 301)
    assert r.no_data and not r.breaching


def test_ok_cannot_be_given_a_severity():
    with pytest.raises(ValueError, match="OK cannot alert"):
        rule(severities={"OK": "page"})
