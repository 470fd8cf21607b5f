"""End to end over the real pieces: Redis outbox -> dispatcher -> Slack notifier -> local fake Slack."""

from __future__ import annotations

import random
import time

import pytest
import redis
from alerting_samples import T0, alert, note
from slack_fake import TOKEN, FakeSlack

from watchtower.alerting.model import AlertState, NotificationKind
from watchtower.alerting.store import AlertStore
from watchtower.notify.dispatcher import Dispatcher
from watchtower.notify.slack import SlackConfig, SlackNotifier

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def slack(fake: FakeSlack, **kw) -> SlackNotifier:
    cfg = SlackConfig(token=TOKEN, channel="C1", base_url=fake.api_url, timeout=0.5, max_attempts=1, **kw)
    return SlackNotifier(cfg, sleep=lambda s: None, rng=random.Random(1))


def incident(group: str) -> list:
    return [
        note(NotificationKind.FIRING, group),
        note(NotificationKind.UPDATE, group, alert(value=60_000.0)),
        note(NotificationKind.RESOLVED, group, alert(AlertState.RESOLVED)),
    ]


def drive(d: Dispatcher, clock: Clock, store: AlertStore, rounds: int = 200) -> None:
    for _ in range(rounds):
        d.run_once()
        nxt = store.next_due_at()
        if nxt is None:
            return
        clock.t = max(clock.t, nxt)
    raise AssertionError("outbox did not drain")


def test_slack_down_for_a_while_every_message_lands_exactly_once(
    fake_slack: FakeSlack, redis_client: redis.Redis
) -> None:
    clock = Clock()
    store = AlertStore(redis_client, sinks=("slack",))
    d = Dispatcher(store, {"slack": slack(fake_slack)}, clock=clock, backoff_base=1, backoff_cap=30)
    groups = [f"lag_high/g{i}" for i in range(3)]
    fake_slack.fail("chat.postMessage", times=4, status=429, error="ratelimited", retry_after=5)
    fake_slack.fail("chat.postMessage", times=3, status=500)
    fake_slack.fail("chat.update", times=2, status=503)
    for g in groups:
        fire, upd, res = incident(g)
        store.commit({}, [fire], now=clock.t)
        store.commit({}, [upd], now=clock.t)
        store.commit({}, [res], now=clock.t)
    drive(d, clock, store)

    roots = fake_slack.top_level("C1")
    assert len(roots) == 3  # one thread per incident
    for root in roots:
        assert [r["metadata"]["event_payload"]["kind"] for r in root["replies"]] == ["update", "resolved"]
        assert root["text"].startswith("RESOLVED")
    keys = [m["metadata"]["event_payload"]["idempotency_key"] for m in fake_slack.all_posts()]
    assert len(keys) == len(set(keys)) == 9
    assert store.pending_count() == 0 and store.dead_letters() == []
    assert d.counts["delivered"] == 9 and d.counts["retried"] >= 3
    assert fake_slack.problems == []


def test_ambiguous_failures_through_the_outbox_never_double_post(
    fake_slack: FakeSlack, redis_client: redis.Redis
) -> None:
    clock = Clock()
    store = AlertStore(redis_client, sinks=("slack",))
    d = Dispatcher(store, {"slack": slack(fake_slack)}, clock=clock, backoff_base=1)
    fake_slack.fail("chat.postMessage", times=2, status=200, late=1.0)  # posted, answered too late
    store.commit({}, incident("g"), now=clock.t)
    drive(d, clock, store)
    [root] = fake_slack.top_level("C1")
    assert len(root["replies"]) == 2 and len(fake_slack.all_posts()) == 3


def test_restart_delivers_the_pending_resolve_once_and_no_second_page(
    fake_slack: FakeSlack, redis_url: str, redis_client: redis.Redis
) -> None:
    clock = Clock()
    fire, upd, res = incident("g")

    # Process 1: pages, then the resolve is committed but the process dies while sending it.
    store1 = AlertStore.from_url(redis_url, sinks=("slack",))
    d1 = Dispatcher(store1, {"slack": slack(fake_slack)}, clock=clock)
    store1.commit({"g": "firing"}, [fire], now=clock.t)
    d1.run_once()
    store1.commit({"g": "resolved"}, [res], now=clock.t)
    store1.start_attempt(store1.head("slack", "g"))
    fake_slack.fail("chat.postMessage", times=1, status=200, late=1.0)
    slack(fake_slack).send(res, store1.thread_ref("slack", "g"))  # it reached Slack; the ack never happened
    store1.close()
    del d1, store1

    # Process 2: restores from Redis; nothing is paged again, the resolve lands once, in the thread.
    store2 = AlertStore.from_url(redis_url, sinks=("slack",))
    assert store2.load_state() == {"g": "resolved"}
    d2 = Dispatcher(store2, {"slack": slack(fake_slack)}, clock=clock)
    d2.run_once()
    [root] = fake_slack.top_level("C1")
    assert [r["metadata"]["event_payload"]["kind"] for r in root["replies"]] == ["resolved"]
    assert len(fake_slack.all_posts()) == 2
    assert store2.pending_count() == 0 and store2.thread_ref("slack", "g") == {}
    d2.stop()
    assert d2.run_once() == 0
    store2.close()


def test_dispatcher_thread_delivers_promptly(fake_slack: FakeSlack, redis_client: redis.Redis) -> None:
    store = AlertStore(redis_client, sinks=("slack",))
    d = Dispatcher(store, {"slack": slack(fake_slack)}, poll_interval=0.2).start()
    try:
        store.commit({}, incident("g"))
        d.wake()
        deadline = time.time() + 10
        while store.pending_count() and time.time() < deadline:
            time.sleep(0.02)
    finally:
        d.stop()
    assert len(fake_slack.all_posts()) == 3
