"""The order-event contract shared by the generator, the Spark job, the Flink job and the tests.

A record's key is the user id (UTF-8) and its value one JSON object:

    {"event_id": "9f1c...", "order_id": "o-42", "user_id": "u-7", "amount": 12.5,
     "event_type": "paid", "event_time": "2026-11-23T15:44:31.123Z"}

`canary` (the daemon's end-to-end probe) and `marker` (one per partition at the end of a generator run,
a single-record batch so that tansu's ListOffsets is exact again) are valid *control* events: they never
enter business tables or aggregates.

`validate` is the one rule book: a pure function of the raw bytes, used by every consumer and the tests.
The wire format itself (encode, key_of, new_event, format_event_time, CONTROL_TYPES) is in
watchtower/contract.py, shared with the daemon's canary; it is re-exported here.
`is_future` is the one rule that needs a clock: a valid event stamped more than `max_future_skew` ahead of
the time it was produced (or processed, whichever is earlier) breaks the contract with the reason
`future_event_time`. Such an event must never move a watermark: one event stamped a year ahead would
otherwise make every on-time event after it late.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson

from watchtower.contract import CONTROL_TYPES as CONTROL_TYPES
from watchtower.contract import encode as encode
from watchtower.contract import format_event_time as format_event_time
from watchtower.contract import key_of as key_of
from watchtower.contract import new_event as new_event

FIELDS: tuple[str, ...] = ("event_id", "order_id", "user_id", "amount", "event_type", "event_time")
STRING_FIELDS: tuple[str, ...] = ("event_id", "order_id", "user_id", "event_type", "event_time")
BUSINESS_TYPES: frozenset[str] = frozenset({"created", "paid", "shipped", "cancelled", "refunded"})
EVENT_TYPES: frozenset[str] = BUSINESS_TYPES | CONTROL_TYPES
DEFAULT_MAX_EVENT_BYTES = 64 * 1024
MAX_ID_LENGTH = 128
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)

# Every failure reason `validate` can give; a field-specific one is `<kind>:<field>`.
REASONS: tuple[str, ...] = (
    "oversized",
    "empty",
    "bad_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "bad_value",
    "unknown_event_type",
)
# Failure reasons a pipeline gives beside `validate`'s: the skew guard (`is_future`).
FUTURE_EVENT_TIME = "future_event_time"
PIPELINE_REASONS: tuple[str, ...] = (*REASONS, FUTURE_EVENT_TIME)
DEFAULT_MAX_FUTURE_SKEW_MS = 5 * 60 * 1000


class Verdict(NamedTuple):
    """`event` and `event_time_ms` are set when the record is valid, `reason` when it is not."""

    event: dict[str, Any] | None
    event_time_ms: int | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.reason is None


def _bad(reason: str) -> Verdict:
    return Verdict(None, None, reason)


def parse_event_time(value: str) -> int | None:
    """Epoch milliseconds of an ISO-8601 timestamp with an explicit zone (`Z` or `+00:00`), else None."""
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    if dt.tzinfo is None:
        return None
    return (dt - _EPOCH) // _MS


def validate(raw: bytes | None, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> Verdict:
    """Check one record value against the contract. Never raises; checks run in the order listed in REASONS."""
    if raw is None or len(raw) == 0:
        return _bad("empty")
    if len(raw) > max_bytes:
        return _bad("oversized")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _bad("bad_json")
    if not isinstance(obj, dict):
        return _bad("not_an_object")
    # Fast path for the common, valid event; anything unusual falls through to the checks that name it.
    try:
        eid, oid, uid, amount, etype = (
            obj["event_id"],
            obj["order_id"],
            obj["user_id"],
            obj["amount"],
            obj["event_type"],
        )
        et = obj["event_time"]
        if (
            type(eid) is str
            and type(oid) is str
            and type(uid) is str
            and type(et) is str
            and (type(amount) is float or type(amount) is int)
            and 0 < len(eid) <= MAX_ID_LENGTH
            and 0 < len(oid) <= MAX_ID_LENGTH
            and 0 < len(uid) <= MAX_ID_LENGTH
            and 0 <= amount < math.inf
            and etype in EVENT_TYPES
        ):
            ms = parse_event_time(et)
            if ms is not None:
                return Verdict(obj, ms, None)
    except (KeyError, TypeError):
        pass
    return _check_fields(obj)


def _check_fields(obj: dict[str, Any]) -> Verdict:
    for name in FIELDS:
        if name not in obj or obj[name] is None:
            return _bad(f"missing_field:{name}")
    for name in STRING_FIELDS:
        if not isinstance(obj[name], str):
            return _bad(f"wrong_type:{name}")
    amount = obj["amount"]
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        return _bad("wrong_type:amount")
    for name in ("event_id", "order_id", "user_id"):
        if not obj[name] or len(obj[name]) > MAX_ID_LENGTH:
            return _bad(f"bad_value:{name}")
    if not math.isfinite(amount) or amount < 0:
        return _bad("bad_value:amount")
    if obj["event_type"] not in EVENT_TYPES:
        return _bad("unknown_event_type")
    ms = parse_event_time(obj["event_time"])
    if ms is None:
        return _bad("bad_value:event_time")
    return Verdict(obj, ms, None)


def is_future(event_time_ms: int, produced_ms: int | None, now_ms: int, max_skew_ms: int) -> bool:
    """True when an event is stamped more than `max_skew_ms` ahead of its reference time.

    The reference is the earlier of the record's Kafka timestamp (`produced_ms`, when known) and `now_ms`
    (the consumer's wall clock): for an on-time producer that is the produce time, so a replay of the same
    record later gives the same answer; a producer whose own clock runs ahead is bounded by `now_ms`."""
    ref = now_ms if produced_ms is None else min(produced_ms, now_ms)
    return event_time_ms > ref + max_skew_ms
