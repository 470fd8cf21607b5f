"""Slack notifier: one thread per incident through the Web API, or plain posts through an incoming webhook.

Web API mode (bot token, scope chat:write; channels:history and groups:history for the duplicate check):
- FIRING opens the thread: chat.postMessage to the channel of the route, else of the severity, else the
  default; the message's channel and ts become the incident's `thread_ref`;
- UPDATE and RESOLVED edit the root in place (chat.update, so its top shows the current state) and post
  a reply in the thread (thread_ts) saying what changed;
- every post carries the notification's idempotency key and its alerts in message metadata. When an
  earlier try may have landed (a timeout after sending, a 5xx, or the dispatcher says this is a
  redelivery), the thread or channel is searched for that key first, and a found message counts as
  delivered: no double post.

Webhook mode cannot edit or thread (Slack gives no ts back), so every notification is posted in full,
and there is nothing to look up: a timeout after sending may post twice (at least once, never lost).

Retries inside one `send`: 429 waits Retry-After, 5xx and network errors back off exponentially with
jitter, within `max_attempts` and `max_inline_wait`; beyond that `send` returns RETRY and the dispatcher
reschedules. 4xx errors (invalid_auth, channel_not_found, ...) are FAILED at once. The token and the
webhook URL never reach a log line, an exception or a DeliveryResult: details carry error codes only.
"""

from __future__ import annotations

import http.client
import logging
import random
import re
import socket
import time
from collections.abc import Callable
from typing import Any, Literal
from urllib.error import URLError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from watchtower.alerting.model import DeliveryResult, Notification, NotificationKind, Severity
from watchtower.core.units import Duration
from watchtower.notify.base import ThreadRef, backoff, delivered, failed, redact, retry
from watchtower.notify.slack_blocks import reply_message, root_message, webhook_message, worst_severity

log = logging.getLogger(__name__)

EVENT_TYPE = "watchtower_alert"
# Alerts listed in a message's metadata (rule, fingerprint, state; about 90 bytes each): a group of more is
# cut here and `alerts_omitted` says how many were left out, so metadata stays a few KB whatever the group.
METADATA_ALERTS = 20
# Slack error codes that mean "try again later" although they come with ok=false.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# The root message is gone or cannot be edited: continue the incident in a new thread.
LOST_ROOT_ERRORS = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]+$")


def _muted_logger() -> logging.Logger:
    """slack-sdk logs request URLs (a webhook URL is a secret) and every failed try: we log ourselves."""
    muted = logging.Logger("watchtower.notify.slack.sdk", level=logging.CRITICAL + 1)
    muted.propagate = False
    return muted


class SlackConfig(BaseModel):
    """One Slack destination. Secrets are SecretStr: masked in `config check` and never logged."""

    # hide_input_in_errors: a validation error would otherwise print the whole input, token included.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    mode: Literal["web_api", "webhook"] = "web_api"
    token: SecretStr | None = None  # xoxb-... bot token (web_api)
    webhook_url: SecretStr | None = None  # https://hooks.slack.com/services/... (webhook)
    channel: str | None = None  # default channel id, C0123ABCD (web_api)
    channels_by_severity: dict[Severity, str] = Field(default_factory=dict)
    channels_by_route: dict[str, str] = Field(default_factory=dict)
    base_url: str = "https://slack.com/api/"
    timeout: Duration = 10.0  # one HTTP request
    max_attempts: int = Field(default=3, ge=1)  # tries inside one send
    max_inline_wait: Duration = 15.0  # waiting between those tries; longer waits go back to the dispatcher
    backoff_base: Duration = 1.0
    backoff_cap: Duration = 8.0
    dedupe_pages: int = Field(default=5, ge=1)  # history pages (200 messages each) searched for a key

    @model_validator(mode="after")
    def _complete(self) -> SlackConfig:
        for where, channel in [
            ("channel", self.channel),
            *self.channels_by_severity.items(),
            *self.channels_by_route.items(),
        ]:
            if channel is not None and not _CHANNEL_ID.match(channel):
                raise ValueError(
                    f"{getattr(where, 'value', where)}: {channel!r} is not a channel id: write the id (C0123ABCD, from the "
                    "channel's details in Slack), because chat.update and the duplicate check only take ids"
                )
        if self.mode == "web_api":
            if self.token is None:
                raise ValueError("web_api mode needs token (a bot token with chat:write)")
            if not self.channel and set(self.channels_by_severity) != set(Severity):
                raise ValueError("web_api mode needs channel, or channels_by_severity for every severity")
        elif self.webhook_url is None:
            raise ValueError("webhook mode needs webhook_url")
        return self


def metadata(n: Notification) -> dict[str, Any]:
    """The message metadata of every post: what a Slack app (and the duplicate check) can read without
    parsing text. `alerts` lists the notification's alerts, at most METADATA_ALERTS of them."""
    payload: dict[str, Any] = {
        "idempotency_key": n.idempotency_key,
        "group_key": n.group_key,
        "kind": n.kind.value,
        "alerts": [
            {"rule": a.rule, "fingerprint": a.fingerprint, "state": a.state.value}
            for a in n.alerts[:METADATA_ALERTS]
        ],
    }
    if len(n.alerts) > METADATA_ALERTS:
        payload["alerts_omitted"] = len(n.alerts) - METADATA_ALERTS
    return {"event_type": EVENT_TYPE, "event_payload": payload}


class _Transient(Exception):
    """A try that may work later. `maybe_sent`: Slack may have acted on it (timeout, 5xx)."""

    def __init__(self, detail: str, retry_after: float | None = None, maybe_sent: bool = False) -> None:
        super().__init__(detail)
        self.detail, self.retry_after, self.maybe_sent = detail, retry_after, maybe_sent


class _Permanent(Exception):
    def __init__(self, detail: str, code: str = "") -> None:
        super().__init__(detail)
        self.detail, self.code = detail, code


def _retry_after(headers: Any) -> float:
    try:
        return max(0.0, float((headers or {}).get("Retry-After") or (headers or {}).get("retry-after") or 1))
    except (TypeError, ValueError):
        return 1.0


def _network_error(where: str, exc: BaseException) -> _Transient:
    reason = exc.reason if isinstance(exc, URLError) else exc
    # Refused or unresolvable: the request never left, so it cannot have been posted.
    never_sent = isinstance(reason, ConnectionRefusedError | socket.gaierror)
    return _Transient(f"{where}: network error ({type(reason).__name__})", maybe_sent=not never_sent)


_NETWORK_ERRORS = (
    URLError,
    TimeoutError,
    socket.timeout,
    ConnectionError,
    http.client.HTTPException,
    OSError,
)


class SlackNotifier:
    def __init__(
        self,
        config: SlackConfig,
        name: str = "slack",
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self._sleep, self._clock, self._rng = sleep, clock, rng or random.Random()
        self._web: WebClient | None = None
        self._hook: WebhookClient | None = None
        self._maybe_posted: set[str] = set()  # idempotency keys whose post may have landed
        self._warned_no_lookup = False
        url = config.webhook_url.get_secret_value() if config.webhook_url else ""
        self._secrets = tuple(
            s
            for s in (
                config.token.get_secret_value() if config.token else "",
                url,
                url.split("://", 1)[-1].partition("/")[2],
            )
            if s
        )

    # -------------------------------------------------------------------------------- clients

    @property
    def web(self) -> WebClient:
        if self._web is None:
            assert self.config.token is not None
            self._web = WebClient(
                token=self.config.token.get_secret_value(),
                base_url=self.config.base_url,
                timeout=self.config.timeout,  # type: ignore[arg-type]  # urllib takes float seconds
                retry_handlers=[],  # retries are ours: one place decides whether a retry may double-post
                logger=_muted_logger(),
            )
        return self._web

    @property
    def hook(self) -> WebhookClient:
        if self._hook is None:
            assert self.config.webhook_url is not None
            self._hook = WebhookClient(
                url=self.config.webhook_url.get_secret_value(),
                timeout=self.config.timeout,  # type: ignore[arg-type]
                retry_handlers=[],
                logger=_muted_logger(),
            )
        return self._hook

    def close(self) -> None:
        self._web = self._hook = None

    # ---------------------------------------------------------------------------------- send

    def send(self, notification: Notification, thread_ref: ThreadRef, attempt: int = 1) -> DeliveryResult:
        key = notification.idempotency_key
        check_first = attempt > 1 or key in self._maybe_posted
        started, tries, waited = self._clock(), 0, 0.0
        while True:
            tries += 1
            try:
                if self.config.mode == "webhook":
                    ref = self._deliver_webhook(notification)
                else:
                    ref = self._deliver(notification, dict(thread_ref), check_first)
                self._maybe_posted.discard(key)
                return delivered(ref)
            except _Permanent as exc:
                self._maybe_posted.discard(key)
                log.debug("slack refused", extra={"notifier": self.name, "detail": self._safe(exc.detail)})
                return failed(self._safe(exc.detail))
            except _Transient as exc:
                if exc.maybe_sent:
                    self._maybe_posted.add(key)
                    check_first = True
                wait = exc.retry_after if exc.retry_after is not None else self._backoff(tries)
                detail = self._safe(exc.detail)
                log.debug("slack try failed", extra={"notifier": self.name, "detail": detail, "try": tries})
                spent = max(self._clock() - started, waited)  # the clock alone misses an injected sleep
                if tries >= self.config.max_attempts or spent + wait > self.config.max_inline_wait:
                    return retry(detail, retry_after=exc.retry_after)
                self._sleep(wait)
                waited += wait
            except Exception as exc:  # anything else from slack-sdk: never raise, never leak its text
                return retry(f"unexpected {type(exc).__name__}")

    def _backoff(self, tries: int) -> float:
        return backoff(tries, self.config.backoff_base, self.config.backoff_cap, self._rng)

    def _safe(self, text: str) -> str:
        return redact(text, self._secrets)

    # ---------------------------------------------------------------------------- web API mode

    def channel_for(self, n: Notification) -> str:
        c = self.config
        channel = (
            c.channels_by_route.get(n.route)
            or c.channels_by_severity.get(worst_severity(n.alerts))
            or c.channel
        )
        assert channel, "SlackConfig validation guarantees a channel"
        return channel

    def _deliver(self, n: Notification, ref: dict[str, str], check_first: bool) -> dict[str, str]:
        if n.kind is NotificationKind.FIRING or not ref.get("ts") or not ref.get("channel"):
            return self._open_thread(n, check_first)
        channel, ts = ref["channel"], ref["ts"]
        try:
            self._api("chat_update", channel=channel, ts=ts, **root_message(n))
        except _Permanent as exc:
            if exc.code not in LOST_ROOT_ERRORS:
                raise
            log.info(
                "incident root message is gone, opening a new thread",
                extra={"notifier": self.name, "group": n.group_key},
            )
            return self._open_thread(n, check_first)
        self._post(n, channel, reply_message(n), thread_ts=ts, check_first=check_first)
        return {"channel": channel, "ts": ts}

    def _open_thread(self, n: Notification, check_first: bool) -> dict[str, str]:
        channel = self.channel_for(n)
        ts, channel = self._post(n, channel, root_message(n), thread_ts=None, check_first=check_first)
        return {"channel": channel, "ts": ts}

    def _post(
        self, n: Notification, channel: str, msg: dict[str, Any], thread_ts: str | None, check_first: bool
    ) -> tuple[str, str]:
        if check_first:
            found = self._find_posted(n, channel, thread_ts)
            if found:
                return found, channel
        args: dict[str, Any] = {"channel": channel, "metadata": metadata(n), "unfurl_links": False, **msg}
        if thread_ts:
            args["thread_ts"] = thread_ts
        data = self._api("chat_postMessage", **args)
        return str(data["ts"]), str(data.get("channel") or channel)

    def _find_posted(self, n: Notification, channel: str, thread_ts: str | None) -> str | None:
        """The ts of a message already carrying this notification's idempotency key, if any."""
        method = "conversations_replies" if thread_ts else "conversations_history"
        args: dict[str, Any] = {"channel": channel, "include_all_metadata": True, "limit": 200}
        args["oldest"] = f"{n.created_at - 300:.6f}"  # it cannot have been posted before it was made
        if thread_ts:
            args["ts"] = thread_ts
        cursor = None
        try:
            for _ in range(self.config.dedupe_pages):
                data = self._api(method, **args, **({"cursor": cursor} if cursor else {}))
                for m in data.get("messages") or ():
                    meta = m.get("metadata") or {}
                    if (
                        meta.get("event_type") == EVENT_TYPE
                        and (meta.get("event_payload") or {}).get("idempotency_key") == n.idempotency_key
                    ):
                        return str(m["ts"])
                cursor = (data.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    return None
        except _Permanent as exc:
            # Without history access we cannot tell: a possible duplicate beats a lost page.
            if not self._warned_no_lookup:
                self._warned_no_lookup = True
                log.warning(
                    "cannot check Slack for an earlier post; a retried message may appear twice "
                    "(grant channels:history and groups:history)",
                    extra={"notifier": self.name, "detail": self._safe(exc.detail)},
                )
        return None

    def _api(self, method: str, **kwargs: Any) -> dict[str, Any]:
        where = method.replace("_", ".", 1)
        try:
            return getattr(self.web, method)(**kwargs).data  # type: ignore[no-any-return]
        except SlackApiError as exc:
            status = exc.response.status_code
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            code = str(data.get("error") or f"HTTP {status}")
            if status == 429 or code == "ratelimited":
                raise _Transient(
                    f"{where}: rate limited", retry_after=_retry_after(exc.response.headers)
                ) from None
            if status >= 500 or code in TRANSIENT_ERRORS:
                raise _Transient(f"{where}: {code[:80]} (HTTP {status})", maybe_sent=True) from None
            raise _Permanent(f"{where}: {code[:80]}", code=code) from None
        except _NETWORK_ERRORS as exc:
            raise _network_error(where, exc) from None

    # ---------------------------------------------------------------------------- webhook mode

    def _deliver_webhook(self, n: Notification) -> dict[str, str]:
        msg = webhook_message(n)
        try:
            resp = self.hook.send(text=msg["text"], blocks=msg["blocks"], unfurl_links=False)
        except _NETWORK_ERRORS as exc:
            raise _network_error("webhook", exc) from None
        body = (resp.body or "").strip()[:80]
        if resp.status_code == 200:
            return {}
        if resp.status_code == 429:
            raise _Transient("webhook: rate limited", retry_after=_retry_after(resp.headers))
        if resp.status_code >= 500:
            raise _Transient(f"webhook: HTTP {resp.status_code} {body}", maybe_sent=True)
        raise _Permanent(f"webhook: HTTP {resp.status_code} {body}", code=body)
