"""Generic JSON webhook: POST each notification to a URL, for receivers other than Slack.

One try per `send`; the dispatcher does the waiting (Retry-After on 429, backoff on 5xx and network
errors). Every request carries an `Idempotency-Key` header and the same key in the body: a receiver that
keeps the keys it has seen can drop the duplicate a timeout-then-retry may produce. The URL and header
values are secrets (they often embed a token): never logged, never in a result.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from watchtower.alerting.codec import notification_to_dict
from watchtower.alerting.model import DeliveryResult, Notification
from watchtower.core.units import Duration
from watchtower.notify.base import ThreadRef, delivered, failed, redact, retry

PAYLOAD_VERSION = 1


class _RedactSecrets(logging.Filter):
    """httpx logs every request URL at INFO; a webhook URL is a secret, so rewrite those lines."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            msg = record.getMessage()
            clean = redact(msg, tuple(self.secrets))
            if clean != msg:
                record.msg, record.args = clean, ()
        return True


_redactor = _RedactSecrets()


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    url: SecretStr
    headers: dict[str, SecretStr] = Field(default_factory=dict)  # e.g. Authorization
    timeout: Duration = 10.0


def payload(n: Notification, thread_ref: ThreadRef) -> dict[str, Any]:
    return {"version": PAYLOAD_VERSION, **notification_to_dict(n), "thread_ref": dict(thread_ref)}


class WebhookNotifier:
    def __init__(
        self, config: WebhookConfig, name: str = "webhook", transport: httpx.BaseTransport | None = None
    ) -> None:
        self.name = name
        self.config = config
        self._transport = transport
        self._client: httpx.Client | None = None
        url = config.url.get_secret_value()
        self._secrets = (
            url,
            url.split("://", 1)[-1].partition("/")[2],
            *(v.get_secret_value() for v in config.headers.values()),
        )
        _redactor.secrets.update(s for s in self._secrets if s)
        httpx_log = logging.getLogger("httpx")
        if _redactor not in httpx_log.filters:
            httpx_log.addFilter(_redactor)

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            headers = {k: v.get_secret_value() for k, v in self.config.headers.items()}
            self._client = httpx.Client(
                timeout=self.config.timeout, headers=headers, transport=self._transport
            )
        return self._client

    def send(self, notification: Notification, thread_ref: ThreadRef, attempt: int = 1) -> DeliveryResult:
        try:
            resp = self.client.post(
                self.config.url.get_secret_value(),
                json=payload(notification, thread_ref),
                headers={"Idempotency-Key": notification.idempotency_key},
            )
        except httpx.HTTPError as exc:  # its text holds the URL: keep only the kind
            return retry(f"webhook: network error ({type(exc).__name__})")
        status = resp.status_code
        if 200 <= status < 300:
            ref = dict(thread_ref)
            try:
                ref.update({str(k): str(v) for k, v in (resp.json().get("thread_ref") or {}).items()})
            except Exception:  # a receiver need not answer JSON
                pass
            return delivered(ref)
        if status == 429 or status == 408 or status >= 500:
            after = resp.headers.get("Retry-After")
            return retry(
                f"webhook: HTTP {status}", retry_after=float(after) if after and after.isdigit() else None
            )
        return failed(redact(f"webhook: HTTP {status} {resp.text[:80]}", self._secrets))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
