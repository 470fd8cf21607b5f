"""The whole path with a daemon restart in the middle: lifecycle step -> Redis (state + outbox) -> Slack."""

from __future__ import annotations

import random

import pytest
import redis
from alerting_samples import T0
from slack_fake import TOKEN, FakeSlack

from watchtower.alerting.lifecycle import LifecycleConfig, LifecycleState, RoutePolicy, step
from watchtower.alerting.model import RuleResult, Severity
from watchtower.alerting.silences import Silence, parse_matchers
from watchtower.alerting.store import AlertStore
from watchtower.core.types import labels
from watchtower.notify.dispatcher import Dispatcher
from watchtower.notify.slack import SlackConfig, SlackNotifier

pytestmark = pytest.mark.integration

CONFIG = LifecycleConfig(routes={"default": RoutePolicy(group_by=("group",), group_wait=0, group_interval=0)})


def result(group: str, breaching: bool, value: float = 50_000.0) -> RuleResult:
    return RuleResult(
        rule="lag_high",
        labels=labels(group=group, topic="orders"),
        breaching=breaching,
        value=value,
        bound=10_000.0,
        severity=Severity.PAGE,
        summary="Consumer lag above 10k messages",
    )


class Daemon:
    """What `watchtower run` does per cycle, reduced to the alerting part: restore, step, commit, deliver."""

    def __init__(self, redis_url: str, fake: FakeSlack) -> None:
        self.store = AlertStore.from_url(redis_url, sinks=("slack",))
        raw = self.store.load_state()
        self.state = LifecycleState() if raw is None else LifecycleState.from_dict(raw)
        cfg = SlackConfig(token=TOKEN, channel="C1", base_url=fake.api_url, timeout=2, max_attempts=1)
        self.now = T0
        self.dispatcher = Dispatcher(
            self.store,
            {"slack": SlackNotifier(cfg, sleep=lambda s: None)},
            clock=lambda: self.now,
            rng=random.Random(3),
        )

    def cycle(self, now: float, results: list[RuleResult], deliver: bool = True) -> int:
        self.now = now
        self.state, notes = step(self.state, results, now, CONFIG, silences=self.store.silences(now))
        self.store.commit(self.state.to_dict(), notes, now=now)
        if deliver:
            self.dispatcher.run_once()
        return len(notes)

    def crash(self) -> None:
        self.store.close()  # no stop(), no final flush: the process is gone


def test_restart_neither_pages_again_nor_loses_the_resolve(
    redis_url: str, redis_client: redis.Redis, fake_slack: FakeSlack
) -> None:
    d1 = Daemon(redis_url, fake_slack)
    assert d1.cycle(T0, [result("orders", True)]) == 1
    assert len(fake_slack.top_level("C1")) == 1
    d1.crash()

    d2 = Daemon(redis_url, fake_slack)  # restored from Redis: it knows the incident is open and paged
    assert d2.cycle(T0 + 60, [result("orders", True)]) == 0
    assert len(fake_slack.top_level("C1")) == 1
    d2.cycle(T0 + 120, [result("orders", False)], deliver=False)  # resolve decided and queued, then...
    d2.crash()

    d3 = Daemon(redis_url, fake_slack)
    d3.cycle(T0 + 180, [result("orders", False)])
    [root] = fake_slack.top_level("C1")
    assert [r["metadata"]["event_payload"]["kind"] for r in root["replies"]] == ["resolved"]
    assert root["text"].startswith("RESOLVED")
    assert d3.store.pending_count() == 0 and fake_slack.problems == []


def test_silences_in_the_store_mute_new_incidents(
    redis_url: str, redis_client: redis.Redis, fake_slack: FakeSlack
) -> None:
    d = Daemon(redis_url, fake_slack)
    d.store.add_silence(
        Silence(parse_matchers('rule=lag_high group=~"pay.*"'), starts_at=T0 - 1, ends_at=T0 + 3600)
    )
    d.cycle(T0, [result("orders", True), result("payments", True)])
    roots = fake_slack.top_level("C1")
    assert len(roots) == 1 and "group=orders" in roots[0]["text"]
