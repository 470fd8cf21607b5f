"""The generic JSON webhook, against httpx's MockTransport (a real transport, no network)."""

from __future__ import annotations

import logging

import httpx
import orjson
import pytest
from alerting_samples import note

from watchtower.alerting.codec import notification_from_dict
from watchtower.alerting.model import DeliveryStatus, NotificationKind
from watchtower.notify.webhook import WebhookConfig, WebhookNotifier

URL = "https://hooks.example.com/in/SeCrEt-PaTh-42"


def notifier(handler, **kw) -> tuple[WebhookNotifier, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return handler(req)

    cfg = WebhookConfig(url=URL, headers={"Authorization": "Bearer tok-SECRET"}, **kw)
    return WebhookNotifier(cfg, transport=httpx.MockTransport(record)), seen


def test_posts_the_notification_as_json_with_an_idempotency_key() -> None:
    wh, seen = notifier(lambda r: httpx.Response(200, json={"thread_ref": {"id": "42"}}))
    n = note(NotificationKind.FIRING, "g")
    r = wh.send(n, {"old": "1"})
    assert r.status is DeliveryStatus.DELIVERED and r.thread_ref == {"old": "1", "id": "42"}
    [req] = seen
    assert req.method == "POST" and str(req.url) == URL
    assert (
        req.headers["Idempotency-Key"] == n.idempotency_key
        and req.headers["Authorization"] == "Bearer tok-SECRET"
    )
    body = orjson.loads(req.content)
    assert body["version"] == 1 and body["thread_ref"] == {"old": "1"}
    assert notification_from_dict(body) == n


@pytest.mark.parametrize(
    ("status", "headers", "expect", "retry_after"),
    [
        (204, {}, DeliveryStatus.DELIVERED, None),
        (429, {"Retry-After": "7"}, DeliveryStatus.RETRY, 7.0),
        (503, {}, DeliveryStatus.RETRY, None),
        (400, {}, DeliveryStatus.FAILED, None),
        (401, {}, DeliveryStatus.FAILED, None),
    ],
)
def test_status_mapping(
    status: int, headers: dict, expect: DeliveryStatus, retry_after: float | None
) -> None:
    wh, _ = notifier(lambda r: httpx.Response(status, headers=headers, text=f"echo {URL}"))
    r = wh.send(note(), {})
    assert r.status is expect and r.retry_after == retry_after
    assert "SeCrEt" not in r.detail


def test_network_errors_retry_without_leaking_the_url(caplog) -> None:
    def boom(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {req.url}", request=req)

    wh, _ = notifier(boom)
    with caplog.at_level(logging.DEBUG):
        r = wh.send(note(), {})
    assert r.status is DeliveryStatus.RETRY and r.detail == "webhook: network error (ConnectError)"
    assert "SeCrEt" not in caplog.text and "SeCrEt" not in repr(wh.config)
    wh.close()


def test_httpx_request_log_lines_do_not_show_the_url(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="httpx")  # an earlier CLI test may have quieted httpx
    wh, _ = notifier(lambda r: httpx.Response(200))
    with caplog.at_level(logging.DEBUG):
        assert wh.send(note(), {}).status is DeliveryStatus.DELIVERED
    assert "HTTP Request: POST" in caplog.text and "SeCrEt" not in caplog.text
