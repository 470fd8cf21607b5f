"""The event contract's rule book, case by case."""

from __future__ import annotations

import pytest

from pipelines.events import (
    CONTROL_TYPES,
    EVENT_TYPES,
    encode,
    format_event_time,
    new_event,
    parse_event_time,
    validate,
)

T = 1795448671123  # 2026-11-23T15:44:31.123Z


def good(**changes) -> dict:
    e = new_event("u-1", 12.5, "paid", T, order_id="o-1", event_id="e" * 32)
    e.update(changes)
    return e


def without(name: str) -> dict:
    e = good()
    del e[name]
    return e


CASES = [
    # (case, raw value, expected reason or None)
    ("valid", encode(good()), None),
    ("valid integer amount", encode(good(amount=3)), None),
    ("zero amount", encode(good(amount=0.0)), None),
    ("extra field ignored", encode({**good(), "note": "x"}), None),
    ("canary is valid", encode(good(event_type="canary")), None),
    ("marker is valid", encode(good(event_type="marker")), None),
    ("offset +00:00", encode(good(event_time="2026-11-23T15:44:31.123+00:00")), None),
    ("null value", None, "empty"),
    ("empty value", b"", "empty"),
    ("oversized", encode(good(order_id="x" * 70_000)), "oversized"),
    ("bad json", b'{"event_id": ', "bad_json"),
    ("not utf-8", b"\xff\xfe", "bad_json"),
    ("array", b"[1, 2]", "not_an_object"),
    ("string", b'"paid"', "not_an_object"),
    *[
        (f"missing {f}", encode(without(f)), f"missing_field:{f}")
        for f in ("event_id", "order_id", "user_id", "amount", "event_type", "event_time")
    ],
    ("null user_id", encode(good(user_id=None)), "missing_field:user_id"),
    ("numeric event_id", encode(good(event_id=7)), "wrong_type:event_id"),
    ("numeric user_id", encode(good(user_id=42)), "wrong_type:user_id"),
    ("string amount", encode(good(amount="12.5")), "wrong_type:amount"),
    ("bool amount", encode(good(amount=True)), "wrong_type:amount"),
    ("epoch event_time", encode(good(event_time=T)), "wrong_type:event_time"),
    ("list event_type", encode(good(event_type=["paid"])), "wrong_type:event_type"),
    ("empty event_id", encode(good(event_id="")), "bad_value:event_id"),
    ("empty user_id", encode(good(user_id="")), "bad_value:user_id"),
    ("negative amount", encode(good(amount=-0.01)), "bad_value:amount"),
    ("unknown event type", encode(good(event_type="teleported")), "unknown_event_type"),
    ("garbage event_time", encode(good(event_time="yesterday")), "bad_value:event_time"),
    ("naive event_time", encode(good(event_time="2026-11-23T15:44:31.123")), "bad_value:event_time"),
]


@pytest.mark.parametrize("case,raw,reason", CASES, ids=[c[0] for c in CASES])
def test_validate(case: str, raw: bytes | None, reason: str | None) -> None:
    verdict = validate(raw, max_bytes=64 * 1024)
    assert verdict.reason == reason
    assert verdict.ok == (reason is None)
    if reason is None:
        assert verdict.event_time_ms is not None


def test_event_time_round_trip_keeps_milliseconds() -> None:
    assert format_event_time(T) == "2026-11-23T15:44:31.123Z"
    assert parse_event_time(format_event_time(T)) == T
    assert validate(encode(good())).event_time_ms == T


def test_control_types_are_event_types() -> None:
    assert CONTROL_TYPES < EVENT_TYPES
