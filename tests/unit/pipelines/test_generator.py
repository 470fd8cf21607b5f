"""The generator's pure parts: token bucket, event factory and fault mix, manifest."""

from __future__ import annotations

import random
import uuid
from collections import Counter

import orjson
import pytest

from pipelines.events import BUSINESS_TYPES, parse_event_time, validate
from pipelines.generator import (
    DUPLICATE,
    FUTURE,
    LATE,
    MALFORMED,
    MALFORMED_KINDS,
    MARKER,
    VALID,
    EventFactory,
    Manifest,
    Record,
    TokenBucket,
    zipf_weights,
)

NOW_MS = 1_795_449_299_123  # 2026-11-23T...


# -- token bucket ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case, rate, steps, expected",
    [
        # (now, limit) per step -> tokens handed out per step
        (1, 1000.0, [(0.0, 100), (0.0102, 100), (0.0105, 100), (0.0203, 100)], [0, 10, 0, 10]),
        (2, 1000.0, [(1.0, 5)], [5]),  # the limit caps a step; the rest stays for later
        (3, 1000.0, [(1.0, 5), (1.0, 1000)], [5, 245]),  # burst is 0.25 s of tokens
        (4, 10.0, [(0.05, 10), (1.0, 10)], [0, 2]),  # the burst of a slow rate is 2.5 tokens
        (5, 10.0, [(0.05, 10), (0.11, 10), (0.35, 10)], [0, 1, 2]),
    ],
)
def test_token_bucket_table(case, rate, steps, expected):
    bucket = TokenBucket(rate, now=0.0)
    got = [bucket.take(now, limit) for now, limit in steps]
    assert got == expected, f"case {case}"


def test_token_bucket_rate_over_a_long_run_is_exact():
    bucket = TokenBucket(50_000.0, now=0.0)
    rng = random.Random(7)
    now, total = 0.0, 0
    while now < 10.0:
        now += rng.uniform(0.0001, 0.02)  # irregular loop turns
        total += bucket.take(min(now, 10.0), 5000)
    assert abs(total - 500_000) <= 1


def test_token_bucket_wait():
    bucket = TokenBucket(100.0, now=0.0)
    assert bucket.wait(0.0) == pytest.approx(0.01)
    assert bucket.wait(0.02) == 0.0
    assert bucket.take(0.02, 10) == 2
    assert bucket.wait(0.02) == pytest.approx(0.01)


def test_token_bucket_rejects_zero_rate():
    with pytest.raises(ValueError):
        TokenBucket(0, now=0.0)


# -- factory --------------------------------------------------------------------------------------


def factory(**kw) -> EventFactory:
    return EventFactory(random.Random(kw.pop("seed", 1)), **kw)


def test_valid_events_follow_the_contract():
    recs = factory(users=50).batch(2000, NOW_MS)
    assert all(r.kind == VALID for r in recs)
    for r in recs:
        v = validate(r.value)
        assert v.ok, (v.reason, r.value)
        assert r.key == v.event["user_id"].encode()
        assert r.event_id == v.event["event_id"]
        assert v.event["event_type"] in BUSINESS_TYPES
        assert v.event_time_ms == NOW_MS
        assert v.event["event_time"].endswith("Z") and len(v.event["event_time"]) == 24
        assert uuid.UUID(hex=v.event["event_id"]).version == 4
        assert v.event["amount"] >= 0 and round(v.event["amount"], 2) == v.event["amount"]
    assert len({r.event_id for r in recs}) == len(recs)


def test_same_seed_same_events_but_fresh_ids():
    a, b = factory(seed=3).batch(100, NOW_MS), factory(seed=3).batch(100, NOW_MS)

    def strip(recs):
        return [
            {k: v for k, v in orjson.loads(r.value).items() if k not in ("event_id", "order_id")}
            for r in recs
        ]

    assert strip(a) == strip(b)
    assert not {r.event_id for r in a} & {r.event_id for r in b}  # two seeded runs never collide downstream


def test_users_are_skewed():
    recs = factory(users=1000, skew=1.1).batch(20_000, NOW_MS)
    by_user = Counter(r.key for r in recs)
    assert by_user[b"u-0"] > 20 * by_user.get(b"u-500", 1)
    uniform = Counter(r.key for r in factory(users=10, skew=0).batch(10_000, NOW_MS))
    assert max(uniform.values()) < 1.2 * min(uniform.values())


def test_zipf_weights_are_cumulative():
    assert zipf_weights(3, 1.0) == pytest.approx([1.0, 1.5, 1.5 + 1 / 3])


def test_fault_mix_ratios():
    f = factory(duplicate_ratio=0.05, malformed_ratio=0.03, late_ratio=0.02, late_by=600)
    recs = [r for _ in range(8) for r in f.batch(5000, NOW_MS)]
    kinds = Counter(r.kind for r in recs)
    n = len(recs)
    for kind, ratio in ((DUPLICATE, 0.05), (MALFORMED, 0.03), (LATE, 0.02), (VALID, 0.90)):
        assert kinds[kind] / n == pytest.approx(ratio, rel=0.1), kind
    sub = Counter(r.sub_kind for r in recs if r.kind == MALFORMED)
    assert set(sub) == set(MALFORMED_KINDS)
    assert min(sub.values()) > 0.5 * kinds[MALFORMED] / len(MALFORMED_KINDS)


def test_late_events_are_valid_and_late_by_the_configured_time():
    recs = factory(late_ratio=1.0, late_by=3600).batch(100, NOW_MS)
    for r in recs:
        v = validate(r.value)
        assert r.kind == LATE and v.ok
        assert v.event_time_ms == NOW_MS - 3_600_000


def test_future_events_are_valid_and_a_year_ahead_in_their_share():
    f = factory(late_ratio=0.1, future_ratio=0.2)
    recs = [r for _ in range(4) for r in f.batch(5000, NOW_MS)]
    kinds = Counter(r.kind for r in recs)
    assert kinds[FUTURE] / len(recs) == pytest.approx(0.2, rel=0.1)
    assert kinds[LATE] / len(recs) == pytest.approx(0.1, rel=0.1)
    future = [validate(r.value) for r in recs if r.kind == FUTURE]
    assert all(v.ok and v.event_time_ms == NOW_MS + 365 * 86_400_000 for v in future)
    with pytest.raises(ValueError, match="future ratios add up to more than 1"):
        factory(late_ratio=0.5, future_ratio=0.6)


def test_duplicates_resend_the_exact_bytes_of_an_earlier_event():
    f = factory(duplicate_ratio=0.3, recent=8, reservoir=64)
    first = f.batch(2000, NOW_MS)
    later = f.batch(2000, NOW_MS + 60_000)
    originals = {r.event_id: r for r in first + later if r.kind != DUPLICATE}
    dups = [r for r in later if r.kind == DUPLICATE]
    assert dups
    for d in dups:
        assert d.value == originals[d.event_id].value and d.key == originals[d.event_id].key
    # Some copies reach back past the recent window, into the earlier batch (other micro-batches).
    first_ids = {r.event_id for r in first}
    assert sum(d.event_id in first_ids for d in dups) > 0.2 * len(dups)


def test_no_duplicate_before_any_event_was_sent():
    recs = factory(duplicate_ratio=1.0).batch(1, NOW_MS)
    assert recs[0].kind == VALID


@pytest.mark.parametrize("sub_kind, reason_prefix", sorted(MALFORMED_KINDS.items()))
def test_each_malformed_kind_fails_validation_for_its_reason(sub_kind, reason_prefix):
    f = factory(malformed_ratio=1.0, seed=11)
    recs = [r for r in f.batch(3000, NOW_MS) if r.sub_kind == sub_kind]
    assert recs
    for r in recs:
        v = validate(r.value)
        assert not v.ok and v.reason.startswith(reason_prefix), (v.reason, r.value[:200])
    if sub_kind == "oversized":
        assert all(len(r.value) > 64 * 1024 for r in recs)


def test_ratios_above_one_are_refused():
    with pytest.raises(ValueError):
        factory(duplicate_ratio=0.5, malformed_ratio=0.4, late_ratio=0.2)


def test_late_events_parse_back():
    (r,) = factory(late_ratio=1.0, late_by=1.5).batch(1, NOW_MS)
    assert parse_event_time(orjson.loads(r.value)["event_time"]) == NOW_MS - 1500


# -- manifest -------------------------------------------------------------------------------------


def test_manifest_counts_and_ids():
    m = Manifest(track_ids=True)
    for rec in [
        Record(b"u", b"{}", VALID, None, "a"),
        Record(b"u", b"{}", LATE, None, "b"),
        Record(b"u", b"{}", DUPLICATE, None, "a"),
        Record(b"u", b"{", MALFORMED, "bad_json", None),
        Record(b"u", b"{}", MALFORMED, "oversized", "c"),
        Record(b"m", b"", MARKER, None, "m1"),
    ]:
        m.add(rec)
    assert m.counts == {VALID: 1, LATE: 1, DUPLICATE: 1, MALFORMED: 2, MARKER: 1}
    assert m.malformed["bad_json"] == 1 and m.malformed["oversized"] == 1
    assert m.ids == {VALID: ["a"], LATE: ["b"], DUPLICATE: ["a"], MALFORMED: ["c"]}
    assert m.sent == 6 and m.unique_valid == 2 and m.pending == 6
    m.delivery(None, 0)
    m.delivery(None, 0)
    m.delivery("_MSG_TIMED_OUT")
    assert (m.delivered, m.failed, m.pending) == (2, 1, 3)
    assert m.partitions == {0: 2} and m.errors == {"_MSG_TIMED_OUT": 1}
    doc = m.as_dict()
    assert doc["sent"] == 6 and doc["ids"][VALID] == ["a"] and doc["pending"] == 3


def test_manifest_without_ids_keeps_none(tmp_path):
    m = Manifest()
    m.add(Record(b"u", b"{}", VALID, None, "a"))
    assert m.ids[VALID] == [] and "ids" not in m.as_dict()
    m.write(tmp_path / "sub" / "m.json")
    assert orjson.loads((tmp_path / "sub" / "m.json").read_bytes())["counts"][VALID] == 1
