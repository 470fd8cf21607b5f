"""A local stand-in for Slack's Web API and incoming webhooks, strict about what it accepts.

It checks every request the way Slack takes it (method path, `Authorization: Bearer`, JSON content type
for chat.*, channel, fallback text, Block Kit structure, thread_ts on replies, ts on update), keeps the
channels' messages with their metadata, and answers as Slack does: `{"ok": true, "channel", "ts", ...}`,
errors as `{"ok": false, "error": ...}` (HTTP 200), 429 with Retry-After, 5xx. Failures can be scripted
per method, including the ambiguous one: the message is posted, then the answer comes too late.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from slack_sdk.models.blocks import Block

TOKEN = "xoxb-1111-2222-SeCrEtToKeN0123456789"
WEBHOOK_PATH = "/services/T0001/B0001/SeCrEtHoOkPaTh0123456789"
CHANNELS = {"C1": "C1", "#alerts": "C1", "C2": "C2", "#pages": "C2", "C3": "C3", "#tickets": "C3"}
BLOCK_TYPES = {"header", "section", "context", "actions", "divider"}


def block_problems(blocks: Any) -> list[str]:
    """Block Kit basics, as Slack checks them: types, text objects, lengths, counts, unique action ids."""
    if not isinstance(blocks, list) or not blocks or len(blocks) > 50:
        return ["blocks must be a list of 1 to 50 blocks"]
    problems = []
    for i, b in enumerate(blocks):
        t = b.get("type")
        if t not in BLOCK_TYPES:
            problems.append(f"block {i}: unexpected type {t!r}")
            continue
        try:
            Block.parse(b).to_dict()  # slack-sdk's own model validation (lengths, required fields)
        except Exception as exc:
            problems.append(f"block {i}: {exc}")
        if t == "header" and (b["text"].get("type") != "plain_text" or len(b["text"]["text"]) > 150):
            problems.append(f"block {i}: header needs plain_text up to 150 chars")
        if t == "section":
            if "text" not in b and "fields" not in b:
                problems.append(f"block {i}: section needs text or fields")
            if len(b.get("fields", [])) > 10 or any(len(f["text"]) > 2000 for f in b.get("fields", [])):
                problems.append(f"block {i}: at most 10 fields of 2000 chars")
            if "text" in b and len(b["text"]["text"]) > 3000:
                problems.append(f"block {i}: section text over 3000 chars")
        if t == "actions":
            ids = [e.get("action_id") for e in b["elements"]]
            if len(ids) != len(set(ids)):
                problems.append(f"block {i}: duplicate action_id")
            for e in b["elements"]:
                if e["type"] == "button" and (
                    len(e["text"]["text"]) > 75 or not e.get("url", "").startswith("http")
                ):
                    problems.append(f"block {i}: button needs short text and an http(s) url")
    return problems


@dataclass
class Request:
    method: str  # "chat.postMessage", "webhook", ...
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes


@dataclass
class Fault:
    status: int
    error: str = ""
    retry_after: int | None = None
    late: float = 0.0  # > 0: act on the request, then answer only after this many seconds


@dataclass
class FakeSlack:
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    channels: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {"C1": [], "C2": [], "C3": []})
    webhook_posts: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # request shapes Slack would reject
    faults: dict[str, deque[Fault]] = field(default_factory=dict)
    _ts: Iterator[int] = field(default_factory=lambda: itertools.count(100))
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    def fail(
        self,
        method: str,
        times: int,
        status: int,
        error: str = "",
        retry_after: int | None = None,
        late: float = 0.0,
    ) -> None:
        self.faults.setdefault(method, deque()).extend(
            Fault(status, error, retry_after, late) for _ in range(times)
        )

    def calls(self, method: str) -> list[Request]:
        return [r for r in self.requests if r.method == method]

    def top_level(self, channel: str = "C1") -> list[dict[str, Any]]:
        return self.channels[channel]

    def all_posts(self) -> list[dict[str, Any]]:
        """Every message that exists in Slack, roots and replies, across channels."""
        out = []
        for msgs in self.channels.values():
            for m in msgs:
                out.append(m)
                out.extend(m["replies"])
        return out

    # -------------------------------------------------------------------------------- handling

    def handle(
        self, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], bytes, float]:
        split = urlsplit(path)
        if split.path == WEBHOOK_PATH:
            return self._webhook(headers, raw)
        if not split.path.startswith("/api/"):
            return 404, {}, b"not found", 0.0
        method = split.path[len("/api/") :]
        body: dict[str, Any] = dict(parse_qsl(split.query))
        ctype = headers.get("content-type", "")
        if raw:
            if ctype.startswith("application/json"):
                body.update(json.loads(raw))
            else:
                body.update(parse_qsl(raw.decode()))
        with self.lock:
            self.requests.append(Request(method, headers, body, raw))
            fault = self.faults.get(method, deque()).popleft() if self.faults.get(method) else None
        if headers.get("authorization") != f"Bearer {TOKEN}":
            return self._json(200, {"ok": False, "error": "invalid_auth"})
        if fault and not fault.late:
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            status, hdrs, out, _ = self._json(
                fault.status, {"ok": False, "error": fault.error or "internal_error"}
            )
            return status, {**hdrs, **extra}, out, 0.0
        handler = {
            "chat.postMessage": self._post,
            "chat.update": self._update,
            "conversations.history": self._history,
            "conversations.replies": self._replies,
        }.get(method)
        if handler is None:
            return self._json(200, {"ok": False, "error": "unknown_method"})
        if method.startswith("chat.") and not ctype.startswith("application/json"):
            self.problems.append(f"{method} sent as {ctype}, expected JSON")
        with self.lock:
            status, hdrs, out, _ = handler(body)
        return status, hdrs, out, fault.late if fault else 0.0

    @staticmethod
    def _json(status: int, doc: dict[str, Any]) -> tuple[int, dict[str, str], bytes, float]:
        return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(doc).encode(), 0.0

    def _channel(self, body: dict[str, Any], ids_only: bool = True) -> str | None:
        """chat.postMessage takes a name too; chat.update and conversations.* only an id, as in Slack."""
        name = str(body.get("channel", ""))
        if ids_only and name not in self.channels:
            return None
        return CHANNELS.get(name)

    def _check_message(self, method: str, body: dict[str, Any]) -> str | None:
        if not body.get("text"):
            self.problems.append(f"{method} without fallback text")
        problems = block_problems(body.get("blocks"))
        if problems:
            self.problems.extend(f"{method}: {p}" for p in problems)
            return "invalid_blocks"
        return None

    def _post(self, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes, float]:
        channel = self._channel(body, ids_only=False)
        if channel is None:
            return self._json(200, {"ok": False, "error": "channel_not_found"})
        if err := self._check_message("chat.postMessage", body):
            return self._json(200, {"ok": False, "error": err})
        ts = f"1700000000.{next(self._ts):06d}"
        msg = {
            "type": "message",
            "ts": ts,
            "text": body["text"],
            "blocks": body["blocks"],
            "replies": [],
            "edits": 0,
        }
        if body.get("metadata"):
            msg["metadata"] = body["metadata"]
        thread_ts = body.get("thread_ts")
        if thread_ts:
            parent = next((m for m in self.channels[channel] if m["ts"] == thread_ts), None)
            if parent is None:
                return self._json(200, {"ok": False, "error": "thread_not_found"})
            msg["thread_ts"] = thread_ts
            parent["replies"].append(msg)
        else:
            self.channels[channel].append(msg)
        public = {k: v for k, v in msg.items() if k not in ("replies", "edits")}
        return self._json(200, {"ok": True, "channel": channel, "ts": ts, "message": public})

    def _update(self, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes, float]:
        channel = self._channel(body)
        if channel is None:
            return self._json(200, {"ok": False, "error": "channel_not_found"})
        target = next((m for m in self.channels[channel] if m["ts"] == body.get("ts")), None)
        if target is None:
            return self._json(200, {"ok": False, "error": "message_not_found"})
        if err := self._check_message("chat.update", body):
            return self._json(200, {"ok": False, "error": err})
        target.update(text=body["text"], blocks=body["blocks"], edits=target["edits"] + 1)
        return self._json(200, {"ok": True, "channel": channel, "ts": target["ts"], "text": body["text"]})

    def _visible(self, m: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in m.items() if k not in ("replies", "edits")}
        if str(body.get("include_all_metadata", "")).lower() not in ("1", "true"):
            out.pop("metadata", None)
        return out

    def _history(self, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes, float]:
        channel = self._channel(body)
        if channel is None:
            return self._json(200, {"ok": False, "error": "channel_not_found"})
        oldest = float(body.get("oldest", 0))
        msgs = [self._visible(m, body) for m in reversed(self.channels[channel]) if float(m["ts"]) > oldest]
        return self._json(
            200, {"ok": True, "messages": msgs, "has_more": False, "response_metadata": {"next_cursor": ""}}
        )

    def _replies(self, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes, float]:
        channel = self._channel(body)
        parent = next((m for m in self.channels.get(channel or "", []) if m["ts"] == body.get("ts")), None)
        if parent is None:
            return self._json(200, {"ok": False, "error": "thread_not_found"})
        msgs = [self._visible(m, body) for m in [parent, *parent["replies"]]]
        return self._json(
            200, {"ok": True, "messages": msgs, "has_more": False, "response_metadata": {"next_cursor": ""}}
        )

    def _webhook(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], bytes, float]:
        body = json.loads(raw) if headers.get("content-type", "").startswith("application/json") else {}
        with self.lock:
            self.requests.append(Request("webhook", headers, body, raw))
            fault = self.faults.get("webhook", deque()).popleft() if self.faults.get("webhook") else None
        if fault and not fault.late:
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return (
                fault.status,
                {"Content-Type": "text/plain", **extra},
                (fault.error or "rollup_error").encode(),
                0.0,
            )
        if not body:
            return 400, {"Content-Type": "text/plain"}, b"invalid_payload", 0.0
        if not body.get("text"):
            self.problems.append("webhook without fallback text")
        if problems := block_problems(body.get("blocks")):
            self.problems.extend(f"webhook: {p}" for p in problems)
            return 400, {"Content-Type": "text/plain"}, b"invalid_blocks", 0.0
        with self.lock:
            self.webhook_posts.append(body)
        return 200, {"Content-Type": "text/plain"}, b"ok", fault.late if fault else 0.0


class _Handler(BaseHTTPRequestHandler):
    fake: FakeSlack

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self._serve()

    def do_GET(self) -> None:  # noqa: N802
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, out_headers, out, late = self.fake.handle(self.path, headers, raw)
        if late:
            time.sleep(late)  # Slack acted; the answer arrives after the client gave up
        try:
            self.send_response(status)
            for k, v in out_headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    handler = type("Handler", (_Handler,), {"fake": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
