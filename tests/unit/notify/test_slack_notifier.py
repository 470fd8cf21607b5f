"""The Slack notifier against a local fake Slack that checks each request as Slack's API takes it."""

from __future__ import annotations

import json
import logging
import random

import pytest
from alerting_samples import T0, alert, note
from slack_fake import TOKEN, WEBHOOK_PATH, FakeSlack

from watchtower.alerting.model import AlertState, DeliveryStatus, NotificationKind, Severity
from watchtower.notify.slack import METADATA_ALERTS, SlackConfig, SlackNotifier, metadata

PAGE_CHANNEL = "C2"


class Sleeps(list):
    """A sleep that records instead of waiting: retry timing is checked, not waited for."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def web(fake: FakeSlack, sleeps: Sleeps | None = None, **kw) -> SlackNotifier:
    cfg = {
        "token": TOKEN,
        "channel": "C1",
        "channels_by_severity": {"page": PAGE_CHANNEL},
        "base_url": fake.api_url,
        "timeout": 2,
        **kw,
    }
    return SlackNotifier(
        SlackConfig(**cfg), sleep=sleeps if sleeps is not None else Sleeps(), rng=random.Random(7)
    )


def hook(fake: FakeSlack, sleeps: Sleeps | None = None, **kw) -> SlackNotifier:
    cfg = SlackConfig(mode="webhook", webhook_url=fake.webhook_url, timeout=2, **kw)
    return SlackNotifier(cfg, sleep=sleeps if sleeps is not None else Sleeps(), rng=random.Random(7))


# ------------------------------------------------------------------------------------ thread lifecycle


def test_one_thread_per_incident_post_update_reply_resolve(fake_slack: FakeSlack) -> None:
    slack = web(fake_slack)
    fire = note(NotificationKind.FIRING, "g")
    r1 = slack.send(fire, {})
    assert r1.status is DeliveryStatus.DELIVERED
    assert r1.thread_ref == {"channel": "C2", "ts": "1700000000.000100"}  # page severity -> #pages, by id

    [post] = fake_slack.calls("chat.postMessage")
    assert post.headers["authorization"] == f"Bearer {TOKEN}"
    assert post.headers["content-type"].startswith("application/json")
    assert post.body["channel"] == PAGE_CHANNEL and "thread_ts" not in post.body
    assert post.body["text"].startswith("FIRING [PAGE] lag_high")
    assert post.body["blocks"][0]["type"] == "header"
    assert post.body["metadata"] == {
        "event_type": "watchtower_alert",
        "event_payload": {
            "idempotency_key": fire.idempotency_key,
            "group_key": "g",
            "kind": "firing",
            "alerts": [{"rule": "lag_high", "fingerprint": fire.alerts[0].fingerprint, "state": "firing"}],
        },
    }

    bigger = alert(value=80_000.0)
    upd = note(NotificationKind.UPDATE, "g", bigger)
    r2 = slack.send(upd, r1.thread_ref)
    assert r2.status is DeliveryStatus.DELIVERED and r2.thread_ref == r1.thread_ref
    [update] = fake_slack.calls("chat.update")
    assert update.body["channel"] == "C2" and update.body["ts"] == r1.thread_ref["ts"]
    assert "80,000" in str(update.body["blocks"])  # the root now shows the new value
    reply = fake_slack.calls("chat.postMessage")[1]
    assert reply.body["channel"] == "C2" and reply.body["thread_ts"] == r1.thread_ref["ts"]
    assert reply.body["text"].startswith("Update: ")

    res = note(NotificationKind.RESOLVED, "g", alert(AlertState.RESOLVED))
    r3 = slack.send(res, r2.thread_ref)
    assert r3.status is DeliveryStatus.DELIVERED
    last = fake_slack.calls("chat.postMessage")[2]
    assert last.body["thread_ts"] == r1.thread_ref["ts"] and "Resolved" in str(last.body["blocks"])

    [root] = fake_slack.top_level("C2")
    assert root["edits"] == 2 and root["text"].startswith("RESOLVED [PAGE]")
    assert [m["metadata"]["event_payload"]["kind"] for m in root["replies"]] == ["update", "resolved"]
    assert fake_slack.problems == []


def test_metadata_lists_the_alerts_it_carries_up_to_a_bound() -> None:
    small = note(NotificationKind.RESOLVED, "g", alert(AlertState.RESOLVED), alert(rule="dlq_growth"))
    assert metadata(small)["event_payload"]["alerts"] == [
        {"rule": "lag_high", "fingerprint": small.alerts[0].fingerprint, "state": "resolved"},
        {"rule": "dlq_growth", "fingerprint": small.alerts[1].fingerprint, "state": "firing"},
    ]
    assert "alerts_omitted" not in metadata(small)["event_payload"]
    many = note(NotificationKind.FIRING, "g", *(alert(topic=f"t{i}") for i in range(METADATA_ALERTS + 5)))
    payload = metadata(many)["event_payload"]
    assert [a["fingerprint"] for a in payload["alerts"]] == [
        a.fingerprint for a in many.alerts[:METADATA_ALERTS]
    ]
    assert payload["alerts_omitted"] == 5
    assert len(json.dumps(metadata(many))) < 4000


@pytest.mark.parametrize(
    ("n", "route", "severity", "channel"),
    [
        (1, "default", Severity.PAGE, "C2"),  # by severity
        (2, "default", Severity.TICKET, "C1"),  # no severity channel: the default
        (3, "dlq", Severity.PAGE, "C3"),  # a route wins over the severity
    ],
)
def test_channel_per_route_then_severity_then_default(
    fake_slack: FakeSlack, n: int, route: str, severity: Severity, channel: str
) -> None:
    slack = web(fake_slack, channels_by_route={"dlq": "C3"})
    r = slack.send(note(NotificationKind.FIRING, "g", alert(severity=severity), route=route), {})
    assert r.thread_ref["channel"] == channel, n


def test_update_without_a_thread_opens_one(fake_slack: FakeSlack) -> None:
    r = web(fake_slack).send(note(NotificationKind.RESOLVED, "g"), {})
    assert r.status is DeliveryStatus.DELIVERED and r.thread_ref["channel"] == "C2"
    assert fake_slack.calls("chat.update") == []


def test_deleted_root_continues_in_a_new_thread(fake_slack: FakeSlack) -> None:
    slack = web(fake_slack)
    r = slack.send(note(NotificationKind.UPDATE, "g"), {"channel": "C2", "ts": "1600000000.000001"})
    assert r.status is DeliveryStatus.DELIVERED and r.thread_ref["ts"] != "1600000000.000001"
    assert len(fake_slack.top_level("C2")) == 1


# --------------------------------------------------------------------------------------------- retries


def test_429_waits_retry_after_then_delivers_once(fake_slack: FakeSlack) -> None:
    sleeps = Sleeps()
    fake_slack.fail("chat.postMessage", times=2, status=429, error="ratelimited", retry_after=2)
    r = web(fake_slack, sleeps, max_attempts=5).send(note(), {})
    assert r.status is DeliveryStatus.DELIVERED
    assert sleeps == [2.0, 2.0]
    assert len(fake_slack.calls("chat.postMessage")) == 3 and len(fake_slack.all_posts()) == 1


def test_long_retry_after_goes_back_to_the_dispatcher(fake_slack: FakeSlack) -> None:
    sleeps = Sleeps()
    fake_slack.fail("chat.postMessage", times=1, status=429, error="ratelimited", retry_after=120)
    r = web(fake_slack, sleeps).send(note(), {})
    assert r.status is DeliveryStatus.RETRY and r.retry_after == 120.0 and sleeps == []
    assert "rate limited" in r.detail


def test_5xx_backs_off_exponentially_with_jitter_within_bounds(fake_slack: FakeSlack) -> None:
    sleeps = Sleeps()
    # A 500 may have been acted on, so each retry first looks for the message: 500 answers keep coming.
    fake_slack.fail("chat.postMessage", times=4, status=500)
    r = web(fake_slack, sleeps, max_attempts=4, backoff_base=1, backoff_cap=8, max_inline_wait=60).send(
        note(), {}
    )
    assert r.status is DeliveryStatus.RETRY and r.retry_after is None
    assert len(sleeps) == 3
    for i, s in enumerate(sleeps, start=1):
        assert 2 ** (i - 1) / 2 <= s <= 2 ** (i - 1)
    assert len(fake_slack.calls("conversations.history")) == 3 and fake_slack.all_posts() == []


def test_retry_budget_in_time_is_respected(fake_slack: FakeSlack) -> None:
    sleeps = Sleeps()
    fake_slack.fail("chat.postMessage", times=10, status=503)
    r = web(fake_slack, sleeps, max_attempts=10, backoff_base=4, backoff_cap=4, max_inline_wait=5).send(
        note(), {}
    )
    assert r.status is DeliveryStatus.RETRY and sum(sleeps) <= 5


@pytest.mark.parametrize("error", ["invalid_auth", "channel_not_found", "not_in_channel", "invalid_blocks"])
def test_4xx_errors_are_never_retried(fake_slack: FakeSlack, error: str) -> None:
    sleeps = Sleeps()
    fake_slack.fail("chat.postMessage", times=1, status=200, error=error)
    r = web(fake_slack, sleeps).send(note(), {})
    assert r.status is DeliveryStatus.FAILED and error in r.detail
    assert sleeps == [] and len(fake_slack.calls("chat.postMessage")) == 1


def test_real_invalid_auth_and_unknown_channel(fake_slack: FakeSlack) -> None:
    bad = SlackNotifier(
        SlackConfig(token="xoxb-wrong", channel="C1", base_url=fake_slack.api_url), sleep=Sleeps()
    )
    assert bad.send(note(), {}).detail == "chat.postMessage: invalid_auth"
    r = web(fake_slack, channel="C9", channels_by_severity={}).send(note(), {})
    assert r.status is DeliveryStatus.FAILED and r.detail == "chat.postMessage: channel_not_found"


def test_network_error_is_retry(fake_slack: FakeSlack) -> None:
    from watchtower.stack.process import free_port

    slack = SlackNotifier(
        SlackConfig(
            token=TOKEN, channel="C1", base_url=f"http://127.0.0.1:{free_port()}/api/", max_attempts=2
        ),
        sleep=Sleeps(),
    )
    r = slack.send(note(), {})
    assert (
        r.status is DeliveryStatus.RETRY
        and r.detail == "chat.postMessage: network error (ConnectionRefusedError)"
    )


# ------------------------------------------------------------------------------------------ idempotency


def test_timeout_after_posting_never_double_posts(fake_slack: FakeSlack) -> None:
    # Slack posts the message but answers after the client gave up: the retry finds it by its key.
    fake_slack.fail("chat.postMessage", times=1, status=200, late=1.5)
    slack = web(fake_slack, timeout=0.5)
    fire = note()
    r = slack.send(fire, {})
    assert r.status is DeliveryStatus.DELIVERED
    [root] = fake_slack.top_level("C2")
    assert r.thread_ref == {"channel": "C2", "ts": root["ts"]}
    assert (
        len(fake_slack.calls("chat.postMessage")) == 1 and len(fake_slack.calls("conversations.history")) == 1
    )
    assert fake_slack.calls("conversations.history")[0].body["include_all_metadata"] in ("1", "true", True)


def test_timeout_on_a_thread_reply_never_double_posts(fake_slack: FakeSlack) -> None:
    slack = web(fake_slack, timeout=0.5)
    ref = slack.send(note(NotificationKind.FIRING, "g"), {}).thread_ref
    fake_slack.fail("chat.postMessage", times=1, status=200, late=1.5)
    r = slack.send(note(NotificationKind.RESOLVED, "g"), ref)
    assert r.status is DeliveryStatus.DELIVERED
    [root] = fake_slack.top_level("C2")
    assert len(root["replies"]) == 1
    assert fake_slack.calls("conversations.replies")[0].body["ts"] == ref["ts"]


def test_redelivery_after_a_restart_checks_first(fake_slack: FakeSlack) -> None:
    fire = note()
    fake_slack.fail("chat.postMessage", times=1, status=200, late=1.5)
    first = web(fake_slack, timeout=0.5, max_attempts=1)
    assert first.send(fire, {}).status is DeliveryStatus.RETRY  # the process dies here
    second = web(fake_slack)  # a new process knows nothing, but the dispatcher says attempt 2
    r = second.send(fire, {}, attempt=2)
    assert r.status is DeliveryStatus.DELIVERED and len(fake_slack.all_posts()) == 1


def test_without_history_scope_it_posts_and_warns_once(fake_slack: FakeSlack, caplog) -> None:
    fake_slack.fail("conversations.history", times=2, status=200, error="missing_scope")
    slack = web(fake_slack)
    with caplog.at_level(logging.WARNING, logger="watchtower"):
        assert slack.send(note(), {}, attempt=2).status is DeliveryStatus.DELIVERED
        assert slack.send(note(), {}, attempt=2).status is DeliveryStatus.DELIVERED
    assert len([r for r in caplog.records if "cannot check Slack" in r.getMessage()]) == 1


# ---------------------------------------------------------------------------------------- webhook mode


def test_webhook_mode_request_shape(fake_slack: FakeSlack) -> None:
    slack = hook(fake_slack)
    for kind in (NotificationKind.FIRING, NotificationKind.UPDATE, NotificationKind.RESOLVED):
        r = slack.send(note(kind, "g"), {})
        assert r.status is DeliveryStatus.DELIVERED and r.thread_ref == {}  # no threads through webhooks
    reqs = fake_slack.calls("webhook")
    assert len(reqs) == 3 and "authorization" not in reqs[0].headers
    assert reqs[0].headers["content-type"].startswith("application/json")
    assert all("channel" not in r.body and "thread_ts" not in r.body for r in reqs)
    assert [p["text"].split(" ")[0] for p in fake_slack.webhook_posts] == ["FIRING", "Update:", "RESOLVED"]
    assert fake_slack.problems == []


@pytest.mark.parametrize(
    ("status", "body", "retry_after", "expect"),
    [
        (429, "rate_limited", 30, DeliveryStatus.RETRY),
        (500, "rollup_error", None, DeliveryStatus.RETRY),
        (404, "no_service", None, DeliveryStatus.FAILED),
        (403, "action_prohibited", None, DeliveryStatus.FAILED),
        (410, "channel_is_archived", None, DeliveryStatus.FAILED),
    ],
)
def test_webhook_errors(
    fake_slack: FakeSlack, status: int, body: str, retry_after: int | None, expect: DeliveryStatus
) -> None:
    fake_slack.fail("webhook", times=5, status=status, error=body, retry_after=retry_after)
    r = hook(fake_slack, max_inline_wait=1).send(note(), {})
    assert r.status is expect
    if retry_after:
        assert r.retry_after == retry_after
    if expect is DeliveryStatus.FAILED:
        assert body in r.detail and len(fake_slack.calls("webhook")) == 1


# -------------------------------------------------------------------------------------------- secrets


def test_secrets_never_in_logs_results_or_exceptions(fake_slack: FakeSlack, caplog) -> None:
    from watchtower.stack.process import free_port

    secrets = (TOKEN, WEBHOOK_PATH.rsplit("/", 1)[-1])
    results, errors = [], []
    closed = f"http://127.0.0.1:{free_port()}"
    with caplog.at_level(logging.DEBUG):
        for status, error in (
            (429, "ratelimited"),
            (500, ""),
            (200, "invalid_auth"),
            (200, "channel_not_found"),
        ):
            fake_slack.fail("chat.postMessage", times=1, status=status, error=error, retry_after=1)
            fake_slack.fail(
                "webhook", times=1, status=status if status != 200 else 403, error=error, retry_after=1
            )
            results.append(web(fake_slack, max_attempts=1).send(note(), {}))
            results.append(hook(fake_slack, max_attempts=1).send(note(), {}))
        fake_slack.fail("chat.postMessage", times=1, status=200, late=1.0)
        results.append(web(fake_slack, timeout=0.3, max_attempts=1).send(note(), {}))
        results.append(web(fake_slack, base_url=closed + "/api/", max_attempts=1).send(note(), {}))
        results.append(hook(fake_slack, max_attempts=1).send(note(), {}))
        down = SlackNotifier(
            SlackConfig(mode="webhook", webhook_url=closed + WEBHOOK_PATH, max_attempts=1), sleep=Sleeps()
        )
        results.append(down.send(note(), {}))
        # The internal errors, and bad configs, keep secrets out of their text too.
        for call in (
            lambda: web(fake_slack, base_url=closed + "/api/")._api(
                "chat_postMessage", channel="C1", text="x"
            ),
            lambda: down._deliver_webhook(note()),
            lambda: web(fake_slack)._api("chat_postMessage", channel="#nope", text="x", blocks=[]),
            lambda: SlackConfig(token=TOKEN),
            lambda: SlackConfig(mode="webhook", webhook_url=fake_slack.webhook_url, timeout="soon"),
            lambda: SlackConfig(token=TOKEN, channel="C1", max_attempts=0),
        ):
            with pytest.raises(Exception) as info:
                call()
            errors.append(info.value)
    assert any(r.status is DeliveryStatus.FAILED for r in results) and any(
        r.status is DeliveryStatus.RETRY for r in results
    )
    texts = [caplog.text, *(r.detail for r in results), *(str(r) for r in results)]
    for exc in errors:
        while exc is not None:
            texts += [str(exc), repr(exc)]
            exc = exc.__cause__ or exc.__context__
    texts += [repr(web(fake_slack).config), repr(hook(fake_slack).config)]
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_config_says_what_is_missing() -> None:
    with pytest.raises(ValueError, match="needs token"):
        SlackConfig(channel="C1")
    with pytest.raises(ValueError, match="needs channel"):
        SlackConfig(token=TOKEN)
    with pytest.raises(ValueError, match="needs webhook_url"):
        SlackConfig(mode="webhook")
    assert SlackConfig(token=TOKEN, channels_by_severity={s.value: "C1" for s in Severity}).channel is None
    with pytest.raises(ValueError, match="not a channel id"):
        SlackConfig(token=TOKEN, channel="#alerts")


def test_created_at_bounds_the_history_search(fake_slack: FakeSlack) -> None:
    web(fake_slack).send(note(created_at=T0 + 1000), {}, attempt=2)
    assert float(fake_slack.calls("conversations.history")[0].body["oldest"]) == T0 + 700
