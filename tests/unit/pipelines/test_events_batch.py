"""`validate_many` must give every record exactly the verdict `validate` gives it: it is only faster."""

from __future__ import annotations

import json
import random

import pytest

from pipelines.events import encode, new_event, validate
from pipelines.events_batch import validate_many
from pipelines.generator import EventFactory

T = 1_795_448_640_123
MAX = 4096


def expected(value: bytes | None, max_bytes: int = MAX) -> tuple:
    event, ms, reason = validate(value, max_bytes)
    if reason is not None:
        return (reason, None, None, None, None, None, None)
    return (
        None,
        event["event_id"],
        event["order_id"],
        event["user_id"],
        float(event["amount"]),
        event["event_type"],
        ms,
    )


def got(values: list[bytes | None], max_bytes: int = MAX) -> list[tuple]:
    c = validate_many(values, max_bytes)
    return list(
        zip(c.reason, c.event_id, c.order_id, c.user_id, c.amount, c.event_type, c.event_time_ms, strict=True)
    )


def assert_same(values: list[bytes | None], max_bytes: int = MAX) -> None:
    for value, verdict in zip(values, got(values, max_bytes), strict=True):
        assert verdict == expected(value, max_bytes), value


def event(**changes) -> bytes:
    e = new_event("u-1", 12.5, "paid", T, event_id="e-1", order_id="o-1")
    e.update(changes)
    return json.dumps(
        {k: v for k, v in e.items() if v is not DROP}, separators=(",", ":"), ensure_ascii=False
    ).encode()


DROP = object()


def test_the_generator_s_every_kind_of_record() -> None:
    factory = EventFactory(
        random.Random(7),
        users=50,
        duplicate_ratio=0.2,
        malformed_ratio=0.4,
        late_ratio=0.2,
        max_event_bytes=MAX,
    )
    values = [r.value for r in factory.batch(3000, T)]
    assert_same(values)
    reasons = {v[0] for v in got(values)}
    assert {None, "bad_json", "oversized", "unknown_event_type", "bad_value:amount"} <= reasons
    assert any(r and r.startswith("missing_field") for r in reasons) and any(
        r and r.startswith("wrong_type") for r in reasons
    )


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"null",
        b"[]",
        b"42",
        b'"x"',
        b"{",
        b"{}",
        b"x" * (MAX + 1),
        event(event_time="2026-11-23T15:44:31.123Z"),
        event(event_time="2026-11-23T15:44:31Z"),
        event(event_time="2026-11-23T15:44:31.123+00:00"),
        event(event_time="2026-11-23T15:44:31.123+02:00"),
        event(event_time="2026-11-23T15:44:31.12Z"),
        event(event_time="2026-11-23T15:44:31.1234Z"),
        event(event_time="2026-11-23T15:44:31.123"),
        event(event_time="2026-11-23 15:44:31.123Z"),
        event(event_time="2026-02-30T15:44:31.123Z"),
        event(event_time="2026-11-23T15:44:60.123Z"),
        event(event_time="2026-11-23T24:00:00.000Z"),
        event(event_time="2026-11-23T15:44:31.12\u0663Z"),
        event(event_time="2026-11-23T15:44:31. 12Z"),
        event(event_time="2026-11-23T15:44:31.+12Z"),
        event(event_time="20261123T154431.12.345Z"),
        event(event_time="2026-W48-1T15:44:31.123Z"),
        event(event_time=""),
        event(event_time=None),
        event(event_time=1795448640123),
        event(amount=0),
        event(amount=-0.0),
        event(amount=-1),
        event(amount=True),
        event(amount="12.5"),
        event(amount=2**64),
        event(amount=1.7e308),
        event(amount=None),
        event(amount=DROP),
        event(event_id=""),
        event(event_id="x" * 128),
        event(event_id="x" * 129),
        event(event_id="\u00e9" * 128),
        event(event_id="\u00e9" * 129),
        event(event_id=7),
        event(event_id=["a"]),
        event(user_id={"a": 1}),
        event(order_id=DROP),
        event(event_type="teleported"),
        event(event_type="canary"),
        event(event_type="marker"),
        event(event_type="PAID"),
        event(extra={"nested": [1, 2, {"x": None}]}),
        event(note='\\u00e9 "quoted" \n'),
        b'{"event_id":"a","event_id":"b","order_id":"o","user_id":"u","amount":1,"event_type":"paid","event_time":"2026-11-23T15:44:31.123Z"}',
        b'{"event_id":5,"event_id":"b","order_id":"o","user_id":"u","amount":1,"event_type":"paid","event_time":"2026-11-23T15:44:31.123Z"}',
        b'{"event_id":"\\ud800","order_id":"o","user_id":"u","amount":1,"event_type":"paid","event_time":"2026-11-23T15:44:31.123Z"}',
        b'{"event_id":"\\u0041","order_id":"o","user_id":"u","amount":1,"event_type":"paid","event_time":"2026-11-23T15:44:31.123Z"}',
        b'{"event_id":"a\xff","order_id":"o","user_id":"u","amount":1,"event_type":"paid","event_time":"2026-11-23T15:44:31.123Z"}',
        b'{"event_id":"a","order_id":"o","user_id":"u","amount":NaN,"event_type":"paid","event_time":"2026-11-23T15:44:31.123Z"}',
        b'{"event_id":"a","order_id":"o","user_id":"u","amount":1e400,"event_type":"paid","event_time":"2026-11-23T15:44:31.123Z"}',
        b' {"event_id":"a","order_id":"o","user_id":"u","amount":1,"event_type":"paid","event_time":"2026-11-23T15:44:31.123Z"}\n',
        b'{"event_id":"a","order_id":"o","user_id":"u","amount":1,"event_type":"paid","event_time":"2026-11-23T15:44:31.123Z"}{}',
        b'{"x":'
        + b"[" * 2000
        + b"]" * 2000
        + b',"event_id":"a","order_id":"o","user_id":"u","amount":1,"event_type":"paid","event_time":"2026-11-23T15:44:31.123Z"}',
    ],
)
def test_edge_cases(value) -> None:
    assert_same([value])


def test_random_mutations_of_valid_records() -> None:
    rng = random.Random(11)
    alphabet = b'"{}[],:0123456789-.eE\\ nulltrfa\xff'
    base = [encode(new_event(f"u-{i}", i * 1.5, "created", T + i * 37)) for i in range(50)]
    values = []
    for _ in range(4000):
        v = bytearray(rng.choice(base))
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(v))
            op = rng.randrange(3)
            if op == 0:
                del v[i]
            elif op == 1:
                v.insert(i, rng.choice(alphabet))
            else:
                v[i] = rng.choice(alphabet)
        values.append(bytes(v))
    assert_same(values)
    assert 0 < sum(1 for g in got(values) if g[0] is None) < len(values)  # both verdicts occur


def test_event_time_across_many_seconds_and_the_prefix_cache() -> None:
    values = [
        event(event_time=f"2026-11-{d:02d}T{h:02d}:{m:02d}:{s:02d}.{ms:03d}Z")
        for d in (1, 30)
        for h in (0, 23)
        for m in (0, 59)
        for s in (0, 59)
        for ms in (0, 999)
    ]
    assert_same(values + values[::-1])
