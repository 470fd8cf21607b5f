"""The Redis store: state and outbox commit together, queues settle atomically, silences persist."""

from __future__ import annotations

import pytest
import redis
from alerting_samples import T0, note

from watchtower.alerting.model import NotificationKind
from watchtower.alerting.silences import Silence, parse_matchers
from watchtower.alerting.store import AlertStore, OutboxItem

pytestmark = pytest.mark.integration


@pytest.fixture
def store(redis_client: redis.Redis) -> AlertStore:
    return AlertStore(redis_client, sinks=("slack", "memory"))


def test_state_and_outbox_are_one_transaction(store: AlertStore, redis_client: redis.Redis) -> None:
    fire = note(NotificationKind.FIRING)
    store.commit({"alerts": {"fp": "firing"}}, [fire], now=T0)
    assert store.load_state() == {"alerts": {"fp": "firing"}}
    # One copy per notifier, each in its own queue, both due.
    assert sorted(store.due(T0)) == [("memory", fire.group_key), ("slack", fire.group_key)]
    assert store.head("slack", fire.group_key).notification == fire
    assert store.pending_count() == 2

    # A state that cannot be written fails before anything reaches Redis: neither state nor messages.
    with pytest.raises(TypeError):
        store.commit({"alerts": object()}, [note(NotificationKind.RESOLVED)], now=T0 + 1)
    assert store.load_state() == {"alerts": {"fp": "firing"}}
    assert len(store.pending("slack", fire.group_key)) == 1


def test_commit_is_a_single_multi_exec(store: AlertStore, redis_client: redis.Redis) -> None:
    def calls(cmd: str) -> int:
        return redis_client.info("commandstats").get(f"cmdstat_{cmd}", {}).get("calls", 0)

    before = {c: calls(c) for c in ("multi", "exec", "set", "rpush")}
    store.commit({"n": 1}, [note(), note(NotificationKind.RESOLVED)], now=T0)
    after = {c: calls(c) for c in before}
    assert after["multi"] - before["multi"] == 1 and after["exec"] - before["exec"] == 1
    assert after["set"] - before["set"] == 1 and after["rpush"] - before["rpush"] == 4  # 2 messages x 2 sinks


def test_fresh_store_has_no_state(store: AlertStore) -> None:
    assert store.load_state() is None
    assert store.due(T0) == [] and store.pending_count() == 0


def test_round_trip_keeps_every_field(store: AlertStore) -> None:
    n = note(NotificationKind.UPDATE)
    item = store.commit({}, [n], now=T0)[0]
    assert OutboxItem.from_json(item.to_json()) == item
    assert store.head(item.sink, n.group_key) == item


def test_ack_records_thread_and_resolve_clears_it(store: AlertStore) -> None:
    store.sinks = ("slack",)
    fire, resolve = note(NotificationKind.FIRING), note(NotificationKind.RESOLVED)
    store.commit({}, [fire, resolve], now=T0)
    head = store.head("slack", fire.group_key)
    assert store.ack(head, {"channel": "C1", "ts": "1.2"}, now=T0)
    assert store.thread_ref("slack", fire.group_key) == {"channel": "C1", "ts": "1.2"}
    assert store.due(T0) == [("slack", fire.group_key)]  # the next item is due at once
    assert not store.ack(head, {}, now=T0)  # settling an item twice is refused
    store.ack(store.head("slack", fire.group_key), {"channel": "C1", "ts": "1.2"}, now=T0)
    assert store.thread_ref("slack", fire.group_key) == {}
    assert store.due(T0 + 10) == [] and store.pending_count() == 0


def test_retry_postpones_one_queue_and_new_messages_wait_behind(store: AlertStore) -> None:
    store.sinks = ("slack",)
    a, b = note(group_key="a"), note(group_key="b")
    store.commit({}, [a, b], now=T0)
    head = store.start_attempt(store.head("slack", "a"))
    store.update_head(head, due_at=T0 + 60)
    assert store.due(T0 + 1) == [("slack", "b")]
    store.commit({}, [note(NotificationKind.RESOLVED, "a")], now=T0 + 2)
    assert store.due(T0 + 2) == [("slack", "b")]  # still waiting for its retry
    assert store.head("slack", "a").attempts == 1
    assert [i.notification.kind for i in store.pending("slack", "a")] == [
        NotificationKind.FIRING,
        NotificationKind.RESOLVED,
    ]


def test_dead_letter_keeps_reason_and_moves_on(store: AlertStore) -> None:
    store.sinks = ("slack",)
    store.commit({}, [note(group_key="a"), note(NotificationKind.RESOLVED, "a")], now=T0)
    head = store.head("slack", "a")
    assert store.dead_letter(head, "failed: channel_not_found", now=T0 + 1)
    [dead] = store.dead_letters()
    assert dead.item == head and dead.reason == "failed: channel_not_found" and dead.at == T0 + 1
    assert store.head("slack", "a").notification.kind is NotificationKind.RESOLVED


def test_silences_persist_and_expire(store: AlertStore) -> None:
    s = store.add_silence(
        Silence(parse_matchers("rule=lag_high"), starts_at=T0, ends_at=T0 + 7200, comment="deploy")
    )
    assert store.silences(T0 + 1) == [s]
    ended = store.expire_silence(s.id, now=T0 + 60)
    assert ended.ends_at == T0 + 60
    assert store.silences(T0 + 61) == []
    assert store.silences(T0 + 61, include_expired=True) == [ended]
    assert store.expire_silence("nope") is None
    assert store.prune_silences(older_than=3600, now=T0 + 60 + 3601) == 1
