"""The conservation verdict as a numbered table: what was sent, what the sinks hold, what the verdict says."""

from __future__ import annotations

import pytest

from watchtower.chaos.verdict import Expected, Found, Row, judge

V = Expected(0, 10, "valid", ("events",), event_id="a")
L = Expected(0, 11, "late", ("late",), event_id="b")
D = Expected(1, 5, "duplicate", ("none",), event_id="a")
M = Expected(1, 6, "malformed:bad_json", ("dlq",), reason="bad_json")
F = Expected(1, 7, "future", ("dlq",), reason="future_event_time")
C = Expected(2, 0, "control", ("none",))
DL = Expected(1, 8, "duplicate", ("none", "late"))  # a copy of a late event is late again

ev = lambda e: Row("events", e.partition, e.offset, e.event_id)  # noqa: E731
late = lambda e: Row("late", e.partition, e.offset, e.event_id)  # noqa: E731
dlq = lambda e, r: Row("dlq", e.partition, e.offset, reason=r)  # noqa: E731
topic = lambda e, r: Row("dlq_topic", e.partition, e.offset, reason=r)  # noqa: E731

CASES = [
    # (case, expected, rows, read the DLQ topic, ok, {kind: (found, missing, extra)}, unexpected)
    (
        "1 all where they belong",
        [V, L, D, M, C],
        [ev(V), late(L), dlq(M, "bad_json")],
        False,
        True,
        {
            "valid": (1, 0, 0),
            "late": (1, 0, 0),
            "duplicate": (1, 0, 0),
            "malformed:bad_json": (1, 0, 0),
            "control": (1, 0, 0),
        },
        0,
    ),
    ("2 a valid event lost", [V], [], False, False, {"valid": (0, 1, 0)}, 0),
    ("3 a valid event in late", [V], [late(V)], False, False, {"valid": (0, 1, 0)}, 0),
    ("4 a valid event twice", [V], [ev(V), ev(V)], False, False, {"valid": (1, 0, 1)}, 0),
    ("5 a valid event in events and late", [V], [ev(V), late(V)], False, False, {"valid": (1, 0, 1)}, 0),
    ("6 a duplicate stored", [D], [ev(D)], False, False, {"duplicate": (0, 0, 1)}, 0),
    (
        "7 malformed with the wrong reason",
        [M],
        [dlq(M, "empty")],
        False,
        False,
        {"malformed:bad_json": (0, 1, 0)},
        0,
    ),
    (
        "8 reason prefix matches a field reason",
        [Expected(0, 1, "m", ("dlq",), reason="missing_field")],
        [Row("dlq", 0, 1, reason="missing_field:user_id")],
        False,
        True,
        {"m": (1, 0, 0)},
        0,
    ),
    (
        "9 DLQ topic read: the topic record is required",
        [M],
        [dlq(M, "bad_json")],
        True,
        False,
        {"malformed:bad_json": (0, 1, 0)},
        0,
    ),
    (
        "10 DLQ topic read and present",
        [M, F],
        [
            dlq(M, "bad_json"),
            topic(M, "bad_json"),
            dlq(F, "future_event_time"),
            topic(F, "future_event_time"),
        ],
        True,
        True,
        {"malformed:bad_json": (1, 0, 0), "future": (1, 0, 0)},
        0,
    ),
    ("11 a control event stored", [C], [ev(C)], False, False, {"control": (0, 0, 1)}, 0),
    (
        "12 a duplicate of a late event may be late",
        [DL],
        [late(DL)],
        False,
        True,
        {"duplicate": (1, 0, 0)},
        0,
    ),
    (
        "13 a row nobody sent (complete)",
        [V],
        [ev(V), Row("events", 5, 5, "zz")],
        False,
        False,
        {"valid": (1, 0, 0)},
        1,
    ),
]


@pytest.mark.parametrize(
    "case,expected,rows,topic_read,ok,kinds,unexpected", CASES, ids=[c[0] for c in CASES]
)
def test_conservation(case, expected, rows, topic_read, ok, kinds, unexpected) -> None:
    v = judge(expected, Found.of(rows, dlq_topic_read=topic_read), complete=True)
    assert v.ok is ok, v.summary()
    assert {k: (x.found, x.missing, x.extra) for k, x in v.kinds.items()} == kinds
    assert v.unexpected == unexpected


def test_the_first_missing_record_is_named() -> None:
    others = [Expected(0, i, "valid", ("events",), event_id=f"e{i}") for i in range(20)]
    v = judge(others, Found.of([ev(e) for e in others if e.offset != 13]))
    assert not v.ok
    first = v.first_missing()
    assert (first.partition, first.offset, first.event_id) == (0, 13, "e13")
    assert "valid event e13 at partition 0 offset 13: expected events, found nothing" in v.summary()
    assert v.as_dict()["kinds"]["valid"]["missing"] == 1


def test_without_complete_unknown_rows_are_not_judged() -> None:
    assert judge([V], Found.of([ev(V), Row("events", 9, 9)])).ok
