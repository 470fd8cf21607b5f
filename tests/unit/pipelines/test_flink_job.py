"""The reference Flink job's record handling (the Flink topology itself runs in tests/integration/flink)."""

from __future__ import annotations

import random

import orjson
import pytest

from pipelines.events import encode, new_event
from pipelines.flink.job import classify, parse_args, parse_event
from pipelines.generator import EventFactory

T = 1_767_225_600_123  # 2026-01-01T00:00:00.123Z

PARSE_CASES = [
    ("1 business event", encode(new_event("u-1", 2.5, "paid", T)).decode(), ("u-1", 2.5, T)),
    ("2 integer amount", encode(new_event("u-2", 3, "created", T)).decode(), ("u-2", 3.0, T)),
    ("3 control event is not aggregated", encode(new_event("u-1", 0, "canary", T)).decode(), None),
    ("4 not JSON", "{not json", None),
    ("5 missing event_time", orjson.dumps({"user_id": "u", "amount": 1}).decode(), None),
    (
        "6 event_time without zone",
        encode({**new_event("u-1", 1, "paid", T), "event_time": "2026-01-01T00:00:00"}).decode(),
        None,
    ),
]


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in PARSE_CASES], ids=[c[0] for c in PARSE_CASES])
def test_parse_event(raw: str, expected: tuple | None) -> None:
    assert parse_event(raw) == expected


def test_generated_late_events_lag_by_late_by() -> None:
    factory = EventFactory(random.Random(1), users=10, late_ratio=0.5, late_by=30.0)
    times = [parse_event(r.value.decode())[2] for r in factory.batch(200, T)]
    assert set(times) == {T, T - 30_000}


def test_defaults_exercise_the_late_side_output() -> None:
    args = parse_args([])
    assert args.kafka_jar is None and args.late_ratio > 0
    # a late event must miss its window even with the allowed lateness, or the side output stays empty
    assert args.late_by > args.window + args.out_of_orderness + args.allowed_lateness


CLASSIFY_CASES = [
    ("1 on time", encode(new_event("u-1", 2.5, "paid", T)).decode(), (("u-1", 2.5, T), None)),
    (
        "2 at the skew bound",
        encode(new_event("u-1", 1, "paid", T + 300_000)).decode(),
        (("u-1", 1.0, T + 300_000), None),
    ),
    (
        "3 beyond the bound",
        encode(new_event("u-1", 1, "paid", T + 300_001)).decode(),
        (None, "future_event_time"),
    ),
    ("4 control", encode(new_event("u-1", 0, "marker", T)).decode(), (None, "control")),
    ("5 malformed", "{nope", (None, "bad_json")),
]


@pytest.mark.parametrize(
    ("raw", "expected"), [c[1:] for c in CLASSIFY_CASES], ids=[c[0] for c in CLASSIFY_CASES]
)
def test_classify_bounds_clock_skew(raw: str, expected: tuple) -> None:
    assert classify(raw, T, 300_000) == expected
