"""The pure micro-batch logic: one table of cases per rule, no Spark, no sinks."""

from __future__ import annotations

import orjson
import pyarrow as pa
import pytest

from pipelines.events import encode, is_future, new_event
from pipelines.spark.kafka_source import ARROW_SCHEMA, pack, plan_tasks, prorate, unpack_arrow
from pipelines.spark.processing import (
    BatchContext,
    decode,
    next_watermark,
    process,
)
from pipelines.spark.redis_sink import json_strings, latency_summary

T = 1_795_448_640_000  # 2026-11-23T15:44:00Z, a whole minute
MIN = 60_000


def ev(eid: str, t: int = T, user: str = "u1", amount: float = 1.0, etype: str = "paid") -> bytes:
    return encode(new_event(user, amount, etype, t, order_id="o", event_id=eid))


def raw(
    values: list[bytes | None], partitions: list[int] | None = None, offsets: list[int] | None = None
) -> pa.Table:
    n = len(values)
    return pa.table(
        {
            "topic": ["orders"] * n,
            "partition": pa.array(partitions or [0] * n, pa.int32()),
            "offset": pa.array(offsets or list(range(n)), pa.int64()),
            "timestamp": pa.array([T * 1000] * n, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "key": pa.array([b"u1"] * n, pa.binary()),
            "value": pa.array(values, pa.binary()),
        },
        schema=ARROW_SCHEMA,
    )


def ctx(watermark_ms: int | None = None, batch_id: int = 7, max_bytes: int = 64 * 1024) -> BatchContext:
    return BatchContext(batch_id, watermark_ms, 5 * MIN, MIN, max_bytes)


MALFORMED = [
    ("bad json", b"{nope", "bad_json"),
    ("null value", None, "empty"),
    ("array", b"[]", "not_an_object"),
    (
        "missing amount",
        b'{"event_id":"x","order_id":"o","user_id":"u","event_type":"paid","event_time":"2026-11-23T15:44:00.000Z"}',
        "missing_field:amount",
    ),
    ("wrong type amount", ev("x").replace(b'"amount":1.0', b'"amount":"1"'), "wrong_type:amount"),
    ("negative amount", ev("x", amount=-1), "bad_value:amount"),
    ("unknown type", ev("x", etype="teleported"), "unknown_event_type"),
    ("bad time", ev("x").replace(b"2026-11-23T15:44:00.000Z", b"soon"), "bad_value:event_time"),
    ("oversized", ev("x").replace(b'"o"', b'"' + b"o" * 2000 + b'"'), "oversized"),
]


@pytest.mark.parametrize("case,value,reason", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_goes_to_dlq_with_reason_and_source(case: str, value: bytes | None, reason: str) -> None:
    r = process(raw([ev("a"), value, ev("b")], offsets=[10, 11, 12]), ctx(max_bytes=1024))
    assert r.counts == {
        "input_rows": 3,
        "sink_rows": 2,
        "dlq_rows": 1,
        "late_rows": 0,
        "duplicate_rows": 0,
        "control_rows": 0,
    }
    row = r.dlq.to_pylist()[0]
    assert (row["failure_reason"], row["batch_id"], row["source_offset"], row["source_partition"]) == (
        reason,
        7,
        11,
        0,
    )
    assert row["payload"] == value


DEDUP = [
    # (case, [(event_id, partition, offset)], seen before, expected sink offsets, duplicates)
    ("no duplicates", [("a", 0, 1), ("b", 0, 2)], [], [1, 2], 0),
    ("in-batch keeps lowest offset", [("a", 0, 5), ("a", 0, 3), ("a", 0, 9)], [], [3], 2),
    ("in-batch across partitions", [("a", 1, 4), ("a", 0, 4)], [], [4], 1),
    ("seen in an earlier batch", [("a", 0, 1), ("b", 0, 2)], ["a"], [2], 1),
    ("earlier and in-batch", [("a", 0, 1), ("a", 0, 2)], ["a"], [], 2),
]


@pytest.mark.parametrize("case,rows,seen,offsets,dups", DEDUP, ids=[d[0] for d in DEDUP])
def test_dedup(case: str, rows: list, seen: list[str], offsets: list[int], dups: int) -> None:
    table = raw([ev(e) for e, _, _ in rows], [p for _, p, _ in rows], [o for _, _, o in rows])
    r = process(
        table, ctx(), seen=lambda ids: pa.array([i for i in ids.to_pylist() if i in seen], pa.string())
    )
    assert r.sink.column("kafka_offset").to_pylist() == offsets
    assert r.duplicate_rows == dups
    if case == "in-batch across partitions":
        assert r.sink.column("kafka_partition").to_pylist() == [0]


LATE = [
    # (case, watermark, event time, late?)
    ("no watermark yet", None, T - 10**9, False),
    ("older than watermark", T, T - 1, True),
    ("exactly at watermark is on time", T, T, False),
    ("newer than watermark", T, T + 1, False),
]


@pytest.mark.parametrize("case,wm,t,late", LATE, ids=[c[0] for c in LATE])
def test_late_boundary(case: str, wm: int | None, t: int, late: bool) -> None:
    r = process(raw([ev("a", t)]), ctx(watermark_ms=wm))
    assert (r.late.num_rows, r.sink.num_rows) == ((1, 0) if late else (0, 1))
    if late:
        assert r.late.column("watermark").cast(pa.int64()).to_pylist() == [wm * 1000]


def test_late_events_still_move_the_running_max() -> None:
    r = process(raw([ev("a", T - 5 * MIN), ev("b", T + MIN)]), ctx(watermark_ms=T))
    assert r.max_event_time_ms == T + MIN
    assert next_watermark(T + 2 * MIN, r.max_event_time_ms) == T + 2 * MIN
    assert next_watermark(None, None) is None


SKEW = 5 * MIN
FUTURE = [
    # (case, event time, Kafka timestamp (None: not set), now, goes to the DLQ as future_event_time)
    ("1 on time", T, T, T, False),
    ("2 exactly at the bound", T + SKEW, T, T, False),
    ("3 one ms beyond the bound", T + SKEW + 1, T, T, True),
    ("4 a year ahead", T + 365 * 24 * 60 * MIN, T, T, True),
    ("5 producer clock ahead: bounded by now", T + 2 * SKEW, T + 10 * SKEW, T, True),
    ("6 replay an hour later classifies the same", T + SKEW + 1, T, T + 60 * MIN, True),
    ("7 no Kafka timestamp: now is the reference", T + SKEW + 1, None, T, True),
    ("8 late events are not future", T - 20 * MIN, T, T, False),
]


@pytest.mark.parametrize("case,t,produced,now,future", FUTURE, ids=[c[0] for c in FUTURE])
def test_skew_guard(case: str, t: int, produced: int | None, now: int, future: bool) -> None:
    r_in = raw([ev("a", t)])
    if produced is None:
        r_in = r_in.set_column(3, "timestamp", pa.array([-1], pa.int64()).cast(pa.timestamp("us", tz="UTC")))
    else:
        r_in = r_in.set_column(
            3, "timestamp", pa.array([produced * 1000], pa.int64()).cast(pa.timestamp("us", tz="UTC"))
        )
    c = BatchContext(7, None, 5 * MIN, MIN, 64 * 1024, now_ms=now, max_future_skew_ms=SKEW)
    r = process(r_in, c)
    assert r.dlq.column("failure_reason").to_pylist() == (["future_event_time"] if future else [])
    assert r.sink.num_rows == (0 if future else 1)
    assert is_future(t, produced, now, SKEW) is future


def test_a_year_ahead_event_never_moves_the_watermark() -> None:
    year = 365 * 24 * 60 * MIN
    c = BatchContext(7, None, 5 * MIN, MIN, 64 * 1024, now_ms=T, max_future_skew_ms=SKEW)
    r = process(raw([ev("future", T + year), ev("a", T - MIN)]), c)
    assert r.max_event_time_ms == T - MIN
    assert r.counts == {
        "input_rows": 2,
        "sink_rows": 1,
        "dlq_rows": 1,
        "late_rows": 0,
        "duplicate_rows": 0,
        "control_rows": 0,
    }
    assert r.dlq.column("payload").to_pylist()[0] == ev("future", T + year)


def test_without_a_clock_there_is_no_skew_guard() -> None:
    r = process(raw([ev("a", T + 365 * 24 * 60 * MIN)]), ctx())
    assert r.sink.num_rows == 1


WINDOWS = [
    # (case, event time, expected window starts) for length 5 min, slide 1 min
    ("on a minute boundary", T, [T - 4 * MIN, T - 3 * MIN, T - 2 * MIN, T - MIN, T]),
    ("inside a minute", T + 59_999, [T - 4 * MIN, T - 3 * MIN, T - 2 * MIN, T - MIN, T]),
    ("next minute", T + MIN, [T - 3 * MIN, T - 2 * MIN, T - MIN, T, T + MIN]),
]


@pytest.mark.parametrize("case,t,starts", WINDOWS, ids=[w[0] for w in WINDOWS])
def test_window_assignment(case: str, t: int, starts: list[int]) -> None:
    r = process(raw([ev("a", t, amount=2.5)]), ctx())
    got = r.aggregates.to_pylist()
    assert [int(g["window_start"].timestamp() * 1000) for g in got] == starts
    assert all(int((g["window_end"] - g["window_start"]).total_seconds()) == 300 for g in got)
    assert all((g["event_count"], g["amount_sum"]) == (1, 2.5) for g in got)


def test_windows_and_buckets_sum_per_user() -> None:
    r = process(
        raw(
            [
                ev("a", T, "u1", 1.0),
                ev("b", T + 1000, "u1", 2.0),
                ev("c", T, "u2", 4.0),
                ev("a", T, "u1", 1.0),
            ]
        ),
        ctx(),
    )
    last = {
        (g["user_id"]): (g["event_count"], g["amount_sum"])
        for g in r.aggregates.to_pylist()
        if int(g["window_start"].timestamp() * 1000) == T
    }
    assert last == {"u1": (2, 3.0), "u2": (1, 4.0)}  # the duplicate of "a" is not counted
    assert sorted(r.buckets.to_pylist(), key=lambda b: b["user_id"]) == [
        {"user_id": "u1", "bucket_start_ms": T, "event_count": 2, "amount_sum": 3.0},
        {"user_id": "u2", "bucket_start_ms": T, "event_count": 1, "amount_sum": 4.0},
    ]


def test_control_events_never_reach_business_outputs() -> None:
    r = process(
        raw([ev("c1", etype="canary"), ev("m1", etype="marker"), ev("a")]), ctx(watermark_ms=T + 10 * MIN)
    )
    assert r.counts == {
        "input_rows": 3,
        "sink_rows": 0,
        "dlq_rows": 0,
        "late_rows": 1,
        "duplicate_rows": 0,
        "control_rows": 2,
    }
    assert r.control.column("event_type").to_pylist() == ["canary", "marker"]
    assert r.aggregates.num_rows == 0 and r.buckets.num_rows == 0
    assert r.max_event_time_ms == T  # control events do not move the watermark


def test_every_record_is_accounted_for_in_a_mixed_batch() -> None:
    values = [ev("a"), ev("a"), b"x", ev("old", T - 20 * MIN), ev("k", etype="canary"), ev("b"), None]
    r = process(raw(values), ctx(watermark_ms=T - 10 * MIN), seen=lambda ids: pa.array(["b"]))
    assert r.counts == {
        "input_rows": 7,
        "sink_rows": 1,
        "dlq_rows": 2,
        "late_rows": 1,
        "duplicate_rows": 2,
        "control_rows": 1,
    }


def test_empty_batch() -> None:
    r = process(raw([]), ctx())
    assert r.counts["input_rows"] == 0 and r.max_event_time_ms is None


PRORATE = [
    # (case, start, latest, max rows, expected end)
    ("under the cap", {0: 0, 1: 0}, {0: 10, 1: 5}, 100, {0: 10, 1: 5}),
    ("shared by backlog", {0: 0, 1: 0}, {0: 300, 1: 100}, 100, {0: 75, 1: 25}),
    ("tiny backlog still moves", {0: 0, 1: 0}, {0: 1000, 1: 1}, 10, {0: 9, 1: 1}),
    ("new partition starts at 0", {0: 5}, {0: 5, 1: 3}, 100, {0: 5, 1: 3}),
]


@pytest.mark.parametrize("case,start,latest,cap,end", PRORATE, ids=[p[0] for p in PRORATE])
def test_prorate(case: str, start: dict, latest: dict, cap: int, end: dict) -> None:
    assert prorate(start, latest, cap) == end


PLAN = [
    # (case, ranges (partition, start, end), tasks, expected tasks)
    ("one task per range", [(0, 0, 3), (1, 5, 6)], None, [[(0, 0, 3)], [(1, 5, 6)]]),
    ("empty ranges dropped", [(0, 4, 4), (1, 0, 2)], 2, [[(1, 0, 1)], [(1, 1, 2)]]),
    (
        "small ranges packed",
        [(p, 0, 1) for p in range(6)],
        2,
        [[(0, 0, 1), (2, 0, 1), (4, 0, 1)], [(1, 0, 1), (3, 0, 1), (5, 0, 1)]],
    ),
    ("hot partition cut", [(0, 0, 100), (1, 0, 10)], 2, [[(0, 0, 55)], [(0, 55, 100), (1, 0, 10)]]),
    ("more tasks than records", [(0, 0, 1)], 4, [[(0, 0, 1)]]),
]


@pytest.mark.parametrize("case,ranges,tasks,expected", PLAN, ids=[p[0] for p in PLAN])
def test_plan_tasks(case: str, ranges: list, tasks: int | None, expected: list) -> None:
    planned = plan_tasks(ranges, tasks)
    assert planned == expected
    covered = sorted((p, o) for task in planned for p, s, e in task for o in range(s, e))
    assert covered == sorted((p, o) for p, s, e in ranges for o in range(s, e))  # every offset exactly once


def test_decoded_in_executors_equals_decoded_in_driver() -> None:
    values = [ev("a"), None, b"{nope", ev("b", etype="canary"), ev("a")]
    table = raw(values)
    shipped = unpack_arrow([pack(decode(b, 1024), 0) for b in table.to_batches(max_chunksize=2)])
    assert shipped.equals(decode(table, 1024))
    assert process(shipped, ctx(max_bytes=1024)).counts == process(table, ctx(max_bytes=1024)).counts


def test_latency_summary() -> None:
    times = pa.array([(T - d) * 1000 for d in range(1, 101)], pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    s = latency_summary(times, T)
    assert (s.count, s.max_ms, s.p99_ms) == (100, 100.0, 99.0) and s.p50_ms in (50.0, 51.0)
    assert len(s.sample) == 100 and set(s.sample) <= set(range(1, 101))
    assert latency_summary(times.slice(0, 0), T).count == 0


@pytest.mark.parametrize(
    "values", [[], ["a"], ["9f1c", "é", "x"], ['q"uote', "back\\slash", "new\nline", "\x01"]]
)
def test_json_strings(values: list[str]) -> None:
    assert orjson.loads(json_strings(pa.chunked_array([pa.array(values, pa.string())]))) == values
