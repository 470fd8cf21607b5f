"""The enricher's pure parts: how a batch folds into a plan, group timing, settings across processes."""

from __future__ import annotations

import orjson
import pytest

from pipelines.events import encode, new_event
from pipelines.workers.enricher import WorkerSettings, candidate_ids, decode, group_settings, plan_batch
from pipelines.workers.pool import settings_from_json, settings_to_json
from watchtower.config.models import KafkaConfig, WorkersConfig

T0 = 1_795_449_299_000


def ev(user="u-1", amount=10.25, event_type="paid", t=T0, event_id=None) -> bytes:
    return encode(new_event(user, amount, event_type, t, event_id=event_id))


def plan(records, applied=None, seen=()):
    return plan_batch(decode(records), applied or {}, seen)


def test_valid_events_fold_per_user():
    p = plan(
        [
            (0, 0, ev(amount=10.25)),
            (0, 1, ev(amount=0.1, event_type="created", t=T0 + 5)),
            (1, 7, ev("u-2", 3.0)),
        ]
    )
    assert p.users["u-1"].events == 2 and p.users["u-1"].amount_cents == 1035
    assert p.users["u-1"].types == {"paid": 1, "created": 1}
    assert p.users["u-1"].last_event_ms == T0 + 5
    assert p.users["u-2"].amount_cents == 300
    assert p.applied == {0: 1, 1: 7} and p.applied_events == 3


@pytest.mark.parametrize(
    "case, value, stat",
    [
        (1, b"{not json", "invalid:bad_json"),
        (2, orjson.dumps({"event_id": "x"}), "invalid:missing_field:order_id"),
        (3, ev(amount=-1.0), "invalid:bad_value:amount"),
        (4, ev(event_type="teleported"), "invalid:unknown_event_type"),
        (5, b"{}" + b" " * (64 * 1024), "invalid:oversized"),
        (6, ev(event_type="marker"), "control"),
        (7, ev(event_type="canary"), "control"),
        (8, None, "invalid:empty"),
    ],
)
def test_records_that_change_no_user_are_counted_by_why(case, value, stat):
    p = plan([(0, 5, value)])
    assert p.users == {} and p.stats == {stat: 1}, f"case {case}"
    assert p.applied == {0: 5}  # still moves the applied offset: never read twice


def test_records_at_or_below_the_applied_offset_are_replays():
    recs = [(0, o, ev(t=T0 + o)) for o in range(5)] + [(1, 0, ev("u-9"))]
    p = plan(recs, applied={0: 2})
    assert p.stats == {"replayed": 3, "applied": 3}
    assert p.users["u-1"].events == 2 and p.users["u-9"].events == 1
    assert p.applied == {0: 4, 1: 0}
    assert plan(recs, applied={0: 4, 1: 0}).stats == {"replayed": 6}


def test_duplicates_by_event_id_count_once():
    dup = ev(event_id="e" * 32)
    p = plan([(0, 0, dup), (0, 1, dup), (0, 2, ev(event_id="f" * 32))], seen=["f" * 32])
    assert p.stats == {"applied": 1, "duplicate": 2}
    assert p.new_ids == ["e" * 32]


def test_candidate_ids_skip_replays_and_invalid():
    d = decode([(0, 0, ev(event_id="a" * 32)), (0, 1, ev(event_id="b" * 32)), (0, 2, b"{")])
    assert candidate_ids(d, {0: 0}) == ["b" * 32]


def test_amount_sums_are_exact_in_cents():
    recs = [(0, i, ev(amount=0.1)) for i in range(1000)]
    assert plan(recs).users["u-1"].amount_cents == 10_000


@pytest.mark.parametrize(
    "session, max_poll, expected",
    [
        (
            6.0,
            10.0,
            {"session.timeout.ms": 6000, "max.poll.interval.ms": 10000, "heartbeat.interval.ms": 600},
        ),
        (
            45.0,
            300.0,
            {"session.timeout.ms": 45000, "max.poll.interval.ms": 300000, "heartbeat.interval.ms": 3000},
        ),
        (0.5, 0.2, {"session.timeout.ms": 500, "max.poll.interval.ms": 500, "heartbeat.interval.ms": 100}),
    ],
)
def test_group_settings_from_workers_config(session, max_poll, expected):
    assert group_settings(WorkersConfig(session_timeout=session, max_poll_interval=max_poll)) == expected


def test_settings_cross_the_process_boundary_with_secrets_intact():
    s = WorkerSettings(
        bootstrap="b:9092",
        redis_url="redis://:pw@h/0",
        topic="t",
        group="g",
        kafka=KafkaConfig(client={"security.protocol": "SASL_SSL"}, sasl_password="hunter2"),
        workers=WorkersConfig(session_timeout="6s"),
    )
    back = settings_from_json(settings_to_json(s))
    assert back == s
    assert back.kafka.sasl_password.get_secret_value() == "hunter2"
