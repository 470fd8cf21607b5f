"""End to end on the real stack: a consumer group falls behind on the embedded broker, `watchtower run`
(a real subprocess, Redis for its state) pages the fake Slack, survives kill -9 without paging again, and
resolves the incident exactly once when the group catches up."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka_support import commit_offsets, produce_exact
from slack_fake import TOKEN, FakeSlack
from watchtower_process import WatchtowerProcess

pytestmark = pytest.mark.integration

RULE = "e2e-lag-high"


def rules_file(path: Path, topic: str) -> Path:
    path.write_text(
        f"""
routes:
  default: {{group_by: [group], group_wait: 0s, group_interval: 0s, repeat_interval: 1h}}
rules:
  - name: {RULE}
    kind: threshold
    selector: watchtower_consumer_lag_messages{{topic="{topic}"}}
    aggregate: max
    by: [group, topic]
    op: ">"
    bound: 50
    for: 2s
    severity: page
    summary: "{{labels[group]}} is {{value:.0f}} messages behind (bound {{bound:.0f}})"
"""
    )
    return path


def config(
    tmp_path: Path, bootstrap: str, redis_url: str, fake: FakeSlack, topic: str, **alerting: Any
) -> dict:
    return {
        "kafka": {"bootstrap_servers": bootstrap},
        "redis": {"url": redis_url},
        "daemon": {
            "collectors": {
                "kafka_lag": {
                    "interval": "1s",
                    "timeout": "2s",
                    "groups_allow": [".*"],
                    "group_topics_refresh": 0,
                },
                "e2e_latency": {"enabled": False},
                "spark_progress": {"enabled": False},
                "dlq": {"enabled": False},
            }
        },
        "alerting": {
            "rules": [str(rules_file(tmp_path / "rules.yaml", topic))],
            "interval": "1s",
            "redis_prefix": f"wt-e2e-{uuid.uuid4().hex[:8]}:",
            "startup_grace": "30s",
            "notifiers": {
                "slack": {
                    "kind": "slack",
                    "token": TOKEN,
                    "channel": "C1",
                    "base_url": fake.api_url,
                    "timeout": "2s",
                    "max_attempts": 1,
                }
            },
            **alerting,
        },
    }


def wait_for(check, timeout: float, what: str, wt: WatchtowerProcess | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}" + (f"\n{wt.output()}" if wt else "")
            )
        time.sleep(0.1)


def firing(wt: WatchtowerProcess) -> list[dict]:
    return [a for a in wt.alerts()["alerts"] if a["state"] == "firing"]


def metric(text: str, name: str, **lbl: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            if all(labels.get(k) == v for k, v in lbl.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


def test_page_survives_kill9_without_a_second_page_and_resolves_once(
    tmp_path: Path, bootstrap: str, redis_url: str, fake_slack: FakeSlack, topic_factory, group_factory
) -> None:
    topic, group = topic_factory("e2e-alert"), group_factory("e2e-alert")
    commit_offsets(bootstrap, group, {(topic, 0): 0})  # the group exists, caught up on an empty topic
    wt = WatchtowerProcess(tmp_path, config(tmp_path, bootstrap, redis_url, fake_slack, topic)).start()
    try:
        wait_for(lambda: wt.alerts()["evaluation"]["cycles"] >= 2, 20, "evaluation to run", wt)
        produce_exact(bootstrap, topic, {0: 120})  # lag 120 > 50: the breach begins

        [post] = wait_for(lambda: fake_slack.calls("chat.postMessage"), 30, "the page", wt)
        assert post.headers["authorization"] == f"Bearer {TOKEN}"
        assert post.headers["content-type"].startswith("application/json")
        body = post.body
        assert body["channel"] == "C1" and "thread_ts" not in body
        assert body["metadata"]["event_type"] == "watchtower_alert"
        assert body["metadata"]["event_payload"]["kind"] == "firing"
        assert group in body["text"] and "120" in body["text"]
        assert fake_slack.problems == []
        [root] = fake_slack.top_level("C1")

        [alert] = firing(wt)
        assert alert["rule"] == RULE and alert["severity"] == "page"
        assert alert["labels"] == {"group": group, "topic": topic}
        assert alert["value"] == 120 and alert["bound"] == 50 and alert["since"] <= alert["firing_since"]
        text = wt.metrics()
        assert metric(text, "watchtower_alert_state", rule=RULE, group=group, severity="page") == 2.0
        assert metric(text, "watchtower_notifications_delivered_total", notifier="slack") == 1.0
        assert metric(text, "watchtower_alert_evaluation_duration_seconds_count") >= 1

        wt.kill9()  # while the alert fires
        wt.start()
        wait_for(lambda: wt.alerts()["evaluation"]["cycles"] >= 5, 30, "five cycles after the restart", wt)
        [alert] = firing(wt)  # restored from Redis, and the history agrees again
        assert alert["value"] == 120
        assert len(fake_slack.calls("chat.postMessage")) == 1 and not fake_slack.calls("chat.update")

        commit_offsets(bootstrap, group, {(topic, 0): 120})  # the group catches up
        wait_for(lambda: root["replies"], 30, "the resolve", wt)
        wait_for(lambda: not firing(wt), 10, "no firing alert", wt)
        time.sleep(3)  # three more cycles: nothing else may arrive
        [reply] = root["replies"]
        assert reply["metadata"]["event_payload"]["kind"] == "resolved"
        assert root["text"].startswith("RESOLVED") and root["edits"] == 1
        assert len(fake_slack.calls("chat.postMessage")) == 2 and len(fake_slack.calls("chat.update")) == 1
        [update] = fake_slack.calls("chat.update")
        assert update.body["channel"] == "C1" and update.body["ts"] == root["ts"]
        assert fake_slack.problems == []
        assert wt.alerts()["alerts"] == []
        assert wt.stop() == 0
    finally:
        wt.stop()


def test_slack_429_and_500_for_a_while_then_every_incident_once(
    tmp_path: Path, bootstrap: str, redis_url: str, fake_slack: FakeSlack, topic_factory, group_factory
) -> None:
    topic = topic_factory("e2e-flaky")
    groups = [group_factory("e2e-flaky"), group_factory("e2e-flaky")]
    for g in groups:
        commit_offsets(bootstrap, g, {(topic, 0): 0})
    fake_slack.fail("chat.postMessage", 2, 429, error="ratelimited", retry_after=1)
    fake_slack.fail("chat.postMessage", 3, 500)
    cfg = config(tmp_path, bootstrap, redis_url, fake_slack, topic, backoff_base="200ms", backoff_cap="1s")
    wt = WatchtowerProcess(tmp_path, cfg).start()
    try:
        produce_exact(bootstrap, topic, {0: 80})
        wait_for(lambda: len(fake_slack.top_level("C1")) == 2, 40, "both incidents posted", wt)
        assert not fake_slack.faults["chat.postMessage"]  # every scripted failure was met
        roots = fake_slack.top_level("C1")
        assert sorted(g for g in groups if any(g in r["text"] for r in roots)) == sorted(groups)
        text = wt.metrics()
        assert metric(text, "watchtower_notifications_retried_total", notifier="slack") >= 3

        for g in groups:
            commit_offsets(bootstrap, g, {(topic, 0): 80})
        wait_for(lambda: all(r["replies"] for r in roots), 40, "both resolves", wt)
        time.sleep(3)
        assert len(fake_slack.top_level("C1")) == 2
        assert [len(r["replies"]) for r in roots] == [1, 1]
        assert all(r["replies"][0]["metadata"]["event_payload"]["kind"] == "resolved" for r in roots)
        assert fake_slack.problems == []
        assert metric(wt.metrics(), "watchtower_notifications_dead_lettered_total", notifier="slack") == 0.0
    finally:
        wt.stop()
