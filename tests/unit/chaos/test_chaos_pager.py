"""The chaos page receiver as a local Slack, driven over HTTP by the real SlackNotifier: a FIRING opens a
thread (one page per alert, from the message metadata), UPDATE/RESOLVED edit the root (no page) and reply
in the thread (a page), a refusal window (429, 500) delays pages without losing or doubling them, the
notifier's duplicate lookup finds what was posted, and a wrong token is refused as Slack refuses it. The
detection verdict gives the same answer as it did from webhook pages."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from alerting_samples import alert, note

from watchtower.alerting.model import AlertState, DeliveryStatus, NotificationKind
from watchtower.chaos.detection import double_pages, judge_detection
from watchtower.chaos.pager import Page, PageReceiver
from watchtower.chaos.scenario import AlertExpectation
from watchtower.notify.slack import SlackConfig, SlackNotifier

TOKEN = "xoxb-chaos-test-0123456789"
CHANNEL = "CCHAOS"


@pytest.fixture
def receiver() -> Iterator[PageReceiver]:
    r = PageReceiver(TOKEN, {CHANNEL: "#chaos"}).start()
    yield r
    r.stop()


def slack(r: PageReceiver, token: str = TOKEN, **kw) -> SlackNotifier:
    cfg = SlackConfig(token=token, channel=CHANNEL, base_url=r.api_url, timeout=2, **kw)
    return SlackNotifier(cfg, rng=random.Random(7))


def notes(group: str = "late-share-high/x") -> tuple:
    now = time.time()
    fire = note(NotificationKind.FIRING, group, alert(rule="late-share-high"), created_at=now)
    upd = note(NotificationKind.UPDATE, group, alert(rule="late-share-high", value=9.0), created_at=now)
    res = note(
        NotificationKind.RESOLVED, group, alert(AlertState.RESOLVED, rule="late-share-high"), created_at=now
    )
    return fire, upd, res


def test_a_thread_is_posted_updated_and_resolved_and_each_message_is_a_page(receiver: PageReceiver) -> None:
    notifier = slack(receiver)
    fire, upd, res = notes()
    r1 = notifier.send(fire, {})
    assert r1.status is DeliveryStatus.DELIVERED and r1.thread_ref["channel"] == CHANNEL
    r2 = notifier.send(upd, r1.thread_ref)
    r3 = notifier.send(res, r2.thread_ref)
    assert r2.status is r3.status is DeliveryStatus.DELIVERED and r3.thread_ref == r1.thread_ref

    [root] = receiver.messages("#chaos")
    assert root["ts"] == r1.thread_ref["ts"] and root["text"].startswith("RESOLVED")  # edited in place
    assert [m["metadata"]["event_payload"]["kind"] for m in root["replies"]] == ["update", "resolved"]
    fp = fire.alerts[0].fingerprint
    assert [(p.kind, p.rule, p.state, p.idempotency_key, p.fingerprint) for p in receiver.pages] == [
        ("firing", "late-share-high", "firing", fire.idempotency_key, fp),
        ("update", "late-share-high", "firing", upd.idempotency_key, fp),
        ("resolved", "late-share-high", "resolved", res.idempotency_key, fp),
    ]
    assert receiver.requests["chat.update"] == 2 and double_pages(receiver.pages) == []
    assert receiver.since(receiver.pages[1].at) == receiver.pages[1:]


def test_429_then_the_retry_delivers_once(receiver: PageReceiver) -> None:
    notifier = slack(receiver, max_attempts=5, max_inline_wait=5)
    fire, _, _ = notes()
    receiver.fail(429, 1.5)
    started = time.monotonic()
    r = notifier.send(fire, {})
    assert r.status is DeliveryStatus.DELIVERED
    assert receiver.refused >= 1 and time.monotonic() - started >= 1.0  # it waited Retry-After: 1
    assert [p.idempotency_key for p in receiver.pages] == [fire.idempotency_key]


def test_a_500_window_returns_retry_and_the_later_send_looks_first_then_posts_once(
    receiver: PageReceiver,
) -> None:
    notifier = slack(receiver, max_attempts=2, backoff_base=0.05, backoff_cap=0.1)
    fire, _, _ = notes()
    receiver.fail(500, 30)
    assert notifier.send(fire, {}).status is DeliveryStatus.RETRY
    assert receiver.pages == [] and receiver.refused == 2  # refused, not acted on
    receiver.fail(200, 0)
    assert notifier.send(fire, {}, attempt=2).status is DeliveryStatus.DELIVERED
    assert receiver.requests["conversations.history"] == 1  # a 5xx may have posted: it looked first
    assert len(receiver.pages) == 1


def test_the_duplicate_lookup_finds_the_posted_root_and_reply(receiver: PageReceiver) -> None:
    fire, upd, _ = notes()
    r1 = slack(receiver).send(fire, {})
    slack(receiver).send(upd, r1.thread_ref)
    # A restarted daemon redelivers both (attempt 2): each is found by its key in the metadata, none reposted.
    again = slack(receiver)
    assert again.send(fire, {}, attempt=2).thread_ref == r1.thread_ref
    assert again.send(upd, r1.thread_ref, attempt=2).status is DeliveryStatus.DELIVERED
    assert receiver.requests["conversations.history"] == 1
    assert receiver.requests["conversations.replies"] == 1
    assert len(receiver.pages) == 2 and double_pages(receiver.pages) == []


def test_history_pages_with_a_cursor_and_shows_metadata_only_when_asked(receiver: PageReceiver) -> None:
    notifier = slack(receiver)
    posted = [notifier.send(notes(f"g{i}")[0], {}).thread_ref["ts"] for i in range(3)]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    url = receiver.api_url + "conversations.history"
    first = httpx.get(url, params={"channel": CHANNEL, "limit": 2}, headers=auth).json()
    assert [m["ts"] for m in first["messages"]] == posted[::-1][:2] and first["has_more"]
    assert all("metadata" not in m for m in first["messages"])
    cursor = first["response_metadata"]["next_cursor"]
    rest = httpx.get(
        url,
        params={"channel": CHANNEL, "limit": 2, "cursor": cursor, "include_all_metadata": "true"},
        headers=auth,
    ).json()
    assert [m["ts"] for m in rest["messages"]] == posted[:1] and not rest["has_more"]
    assert rest["messages"][0]["metadata"]["event_type"] == "watchtower_alert"
    assert (
        httpx.get(url, params={"channel": CHANNEL, "oldest": posted[1]}, headers=auth).json()["messages"][0][
            "ts"
        ]
        == (posted[2])
    )


def test_a_form_post_is_taken_as_slack_takes_it(receiver: PageReceiver) -> None:
    meta = '{"event_type": "watchtower_alert", "event_payload": {"kind": "firing", "idempotency_key": "k",'
    meta += ' "alerts": [{"rule": "r", "fingerprint": "f", "state": "firing"}]}}'
    resp = httpx.post(
        receiver.api_url + "chat.postMessage",
        data={"channel": "#chaos", "text": "hi", "metadata": meta},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).json()
    assert resp["ok"] and resp["channel"] == CHANNEL and resp["ts"]
    assert [(p.rule, p.fingerprint, p.idempotency_key) for p in receiver.pages] == [("r", "f", "k")]


@pytest.mark.parametrize(
    ("method", "args", "headers", "error"),
    [
        (
            "chat.postMessage",
            {"channel": CHANNEL, "text": "x"},
            {"Authorization": "Bearer xoxb-wrong"},
            "invalid_auth",
        ),
        ("chat.postMessage", {"channel": CHANNEL, "text": "x"}, {}, "not_authed"),
        ("chat.postMessage", {"text": "x"}, None, "channel_not_found"),
        ("chat.postMessage", {"channel": "C0OTHER", "text": "x"}, None, "channel_not_found"),
        ("chat.postMessage", {"channel": CHANNEL}, None, "no_text"),
        (
            "chat.postMessage",
            {"channel": CHANNEL, "text": "x", "thread_ts": "1.000001"},
            None,
            "thread_not_found",
        ),
        (
            "chat.update",
            {"channel": "#chaos", "ts": "1.0", "text": "x"},
            None,
            "channel_not_found",
        ),  # ids only
        ("chat.update", {"channel": CHANNEL, "ts": "1.0", "text": "x"}, None, "message_not_found"),
        ("conversations.replies", {"channel": CHANNEL, "ts": "1.0"}, None, "thread_not_found"),
        ("chat.delete", {"channel": CHANNEL, "ts": "1.0"}, None, "unknown_method"),
        ("conversations.history", {"channel": CHANNEL, "limit": "many"}, None, "invalid_arguments"),
    ],
)
def test_what_slack_refuses_is_refused(
    receiver: PageReceiver, method: str, args: dict, headers: dict | None, error: str
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"} if headers is None else headers
    resp = httpx.post(receiver.api_url + method, json=args, headers=headers)
    assert resp.json() == {"ok": False, "error": error}
    assert receiver.pages == []


def test_a_wrong_token_fails_the_notifier_at_once(receiver: PageReceiver) -> None:
    r = slack(receiver, token="xoxb-wrong-token").send(notes()[0], {})
    assert r.status is DeliveryStatus.FAILED and "invalid_auth" in r.detail and "xoxb" not in r.detail
    assert receiver.pages == []


def test_concurrent_posts_get_distinct_ts(receiver: PageReceiver) -> None:
    refs: list[str] = []

    def post(i: int) -> None:
        refs.append(slack(receiver).send(notes(f"g{i}")[0], {}).thread_ref["ts"])

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(refs)) == 8 and len(receiver.messages(CHANNEL)) == 8


def test_detection_judges_slack_pages_as_it_judged_webhook_pages(receiver: PageReceiver) -> None:
    """The same incident as the webhook delivered it (one page per alert per notification) gives the
    same pages, so the same verdict: fired, resolved, one page, no double page, no false positive."""
    t0 = time.time()
    notifier = slack(receiver)
    fire, upd, res = notes()
    ref = notifier.send(fire, {}).thread_ref
    notifier.send(upd, ref)
    notifier.send(res, ref)
    as_webhook = [
        Page(p.at, n.kind.value, a.rule, a.state.value, n.idempotency_key, a.fingerprint)
        for p, n in zip(receiver.pages, (fire, upd, res), strict=True)
        for a in n.alerts
    ]
    assert receiver.pages == as_webhook
    expected = [AlertExpectation(rule="late-share-high", within=30, resolve_within=60, pages=1)]
    verdict = judge_detection(receiver.since(t0), expected, t0, t0)
    assert verdict.ok, verdict.summary()
    assert (verdict.alerts[0].pages, verdict.alerts[0].resolves) == (1, 1)
