"""A local Slack for chaos runs: the daemon's real Slack notifier (Web API mode, `base_url` pointed here)
posts every page to it, and the detection verdict judges from what it received. It can answer 429 / 5xx
for a while, like a struggling Slack, to test that pages are retried, not lost (and not posted twice).

It speaks the subset of the Web API the notifier uses, as Slack takes it: `chat.postMessage`,
`chat.update`, `conversations.history` and `conversations.replies`, with JSON, form or query arguments,
`Authorization: Bearer <token>` checked (`not_authed` / `invalid_auth`), known channels only (a name like
`#chaos` for chat.postMessage, ids everywhere else), a `ts` per message, threads, message metadata returned
only with `include_all_metadata`, `oldest` and cursor paging. Errors are HTTP 200 with
`{"ok": false, "error": ...}`, as Slack answers them; 429 carries `Retry-After`.

A page is a posted message carrying watchtower's metadata (`event_type: watchtower_alert`): one `Page` per
alert in its `event_payload.alerts`. A root (FIRING) and a reply in the thread (UPDATE, RESOLVED) are
pages; a `chat.update` of the root is not (the reply that follows it is). Plain data out (`Page`); the
HTTP server runs in a daemon thread.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from watchtower.notify.slack import EVENT_TYPE


@dataclass(frozen=True, slots=True)
class Page:
    at: float  # when it arrived (epoch seconds)
    kind: str  # firing | update | resolved
    rule: str
    state: str  # the alert's state in this message
    idempotency_key: str
    fingerprint: str = ""  # the alert's (rule + labels): a second FIRING for an open one is a double page


def pages_of(message: dict[str, Any], at: float) -> list[Page]:
    """The pages one posted message carries: one per alert in its watchtower metadata. Pure."""
    meta = message.get("metadata") or {}
    if meta.get("event_type") != EVENT_TYPE:
        return []
    payload = meta.get("event_payload") or {}
    return [
        Page(
            at,
            str(payload.get("kind", "")),
            str(a.get("rule", "")),
            str(a.get("state", "")),
            str(payload.get("idempotency_key", "")),
            str(a.get("fingerprint", "")),
        )
        for a in payload.get("alerts") or ()
    ]


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


class PageReceiver:
    """`token`: the bot token the notifier must send; `channels`: channel id -> name (`{"CCHAOS": "#chaos"}`)."""

    def __init__(self, token: str, channels: dict[str, str], host: str = "127.0.0.1", port: int = 0) -> None:
        self.pages: list[Page] = []
        self.refused = 0  # requests answered with the fail() status
        self.requests: dict[str, int] = {}  # API method -> calls that reached a handler
        self._token = token
        self._ids = {**{name: cid for cid, name in channels.items()}, **{cid: cid for cid in channels}}
        self._messages: dict[str, list[dict[str, Any]]] = {cid: [] for cid in channels}  # roots, oldest first
        self._last_ts = 0.0
        self._lock = threading.Lock()
        self._fail_status: int | None = None
        self._fail_until = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self._serve()

            def do_GET(self) -> None:  # noqa: N802
                self._serve()

            def _serve(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, doc = receiver.handle(
                    self.path,
                    self.headers.get("Authorization", ""),
                    self.headers.get("Content-Type", ""),
                    raw,
                )
                out = json.dumps(doc).encode()
                try:
                    self.send_response(status)
                    for k, v in {"Content-Type": "application/json; charset=utf-8", **headers}.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):  # the notifier gave up waiting
                    pass

            def log_message(self, *args: Any) -> None:  # request lines would carry nothing useful
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="chaos-pager", daemon=True)

    @property
    def api_url(self) -> str:
        """The Slack notifier's `base_url`."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api/"

    def start(self) -> PageReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail(self, status: int, seconds: float) -> None:
        """Answer `status` (429 with Retry-After: 1, or a 5xx) to every request for `seconds` (0: stop failing).
        A refused request is not acted on."""
        with self._lock:
            self._fail_status, self._fail_until = status, time.time() + seconds

    def since(self, t: float) -> list[Page]:
        with self._lock:
            return [p for p in self.pages if p.at >= t]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """The channel's root messages, oldest first, each with its `replies` (copies)."""
        with self._lock:
            return json.loads(json.dumps(self._messages[self._ids[channel]]))

    # -- the API -------------------------------------------------------------------------------------

    def handle(
        self, path: str, authorization: str, content_type: str, raw: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        """One request -> (HTTP status, headers, JSON answer)."""
        split = urlsplit(path)
        if not split.path.startswith("/api/"):
            return 404, {}, {"ok": False, "error": "unknown_method"}
        with self._lock:
            if self._fail_status is not None and time.time() < self._fail_until:
                self.refused += 1
                if self._fail_status == 429:
                    return 429, {"Retry-After": "1"}, {"ok": False, "error": "ratelimited"}
                return self._fail_status, {}, {"ok": False, "error": "internal_error"}
        if not authorization.startswith("Bearer "):
            return 200, {}, {"ok": False, "error": "not_authed"}
        if authorization != f"Bearer {self._token}":
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        try:
            args = self._args(split.query, content_type, raw)
        except ValueError:
            return 200, {}, {"ok": False, "error": "invalid_json"}
        method = split.path[len("/api/") :]
        handler = {
            "chat.postMessage": self._post,
            "chat.update": self._update,
            "conversations.history": self._history,
            "conversations.replies": self._replies,
        }.get(method)
        if handler is None:
            return 404, {}, {"ok": False, "error": "unknown_method"}
        with self._lock:
            self.requests[method] = self.requests.get(method, 0) + 1
            try:
                return 200, {}, handler(args)
            except (TypeError, ValueError):  # a limit, cursor or oldest that is not a number
                return 200, {}, {"ok": False, "error": "invalid_arguments"}

    @staticmethod
    def _args(query: str, content_type: str, raw: bytes) -> dict[str, Any]:
        """Query, form or JSON arguments; in a form, `blocks` and `metadata` are JSON strings, as Slack takes them."""
        args: dict[str, Any] = dict(parse_qsl(query))
        if raw and content_type.startswith("application/json"):
            args.update(json.loads(raw))
        elif raw:
            args.update(parse_qsl(raw.decode()))
        for key in ("blocks", "metadata"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        return args

    def _channel(self, args: dict[str, Any], names: bool = False) -> str | None:
        """chat.postMessage takes a channel name too; chat.update and conversations.* only an id, as in Slack."""
        channel = str(args.get("channel") or "")
        return self._ids.get(channel) if names else (channel if channel in self._messages else None)

    def _next_ts(self) -> str:
        self._last_ts = max(time.time(), self._last_ts + 0.000001)
        return f"{self._last_ts:.6f}"

    def _root(self, channel: str, ts: Any) -> dict[str, Any] | None:
        return next((m for m in self._messages[channel] if m["ts"] == str(ts)), None)

    def _post(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args, names=True)
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        ts = self._next_ts()
        msg: dict[str, Any] = {"type": "message", "ts": ts, "text": str(args.get("text") or "")}
        for key in ("blocks", "metadata"):
            if args.get(key):
                msg[key] = args[key]
        if args.get("thread_ts"):
            root = self._root(channel, args["thread_ts"])
            if root is None:
                return {"ok": False, "error": "thread_not_found"}
            msg["thread_ts"] = root["ts"]
            root["replies"].append(msg)
        else:
            self._messages[channel].append({**msg, "replies": []})
        self.pages.extend(pages_of(msg, float(ts)))
        return {"ok": True, "channel": channel, "ts": ts, "message": msg}

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        root = self._root(channel, args.get("ts"))
        if root is None:
            return {"ok": False, "error": "message_not_found"}
        for key in ("text", "blocks", "metadata"):
            if key in args:
                root[key] = args[key]
        return {"ok": True, "channel": channel, "ts": root["ts"], "text": root["text"]}

    def _history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        oldest = float(args.get("oldest") or 0)
        return self._page([m for m in reversed(self._messages[channel]) if float(m["ts"]) > oldest], args)

    def _replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        root = self._root(channel, args.get("ts"))
        if root is None:
            return {"ok": False, "error": "thread_not_found"}
        oldest = float(args.get("oldest") or 0)
        return self._page([root, *(m for m in root["replies"] if float(m["ts"]) > oldest)], args)

    @staticmethod
    def _page(messages: list[dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
        """One page of `limit` messages from the cursor on (the cursor is an offset), metadata only if asked."""
        start = int(args.get("cursor") or 0)
        limit = max(1, min(int(args.get("limit") or 100), 1000))
        metadata = _truthy(args.get("include_all_metadata"))
        out = [
            {k: v for k, v in m.items() if k != "replies" and (metadata or k != "metadata")}
            for m in messages[start : start + limit]
        ]
        more = start + limit < len(messages)
        return {
            "ok": True,
            "messages": out,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }
