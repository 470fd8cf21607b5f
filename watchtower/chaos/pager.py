"""A local page receiver: the daemon's webhook notifier POSTs every notification here (a real HTTP path
through the dispatcher), and the detection verdict judges from what arrived. It can answer 429 / 500 for
a while, like a struggling Slack, to test that pages are retried, not lost.

Plain data out (`Page`); the HTTP server runs in a daemon thread.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True, slots=True)
class Page:
    at: float  # when it arrived (epoch seconds)
    kind: str  # firing | update | resolved
    rule: str
    state: str  # the alert's state in this message
    idempotency_key: str
    fingerprint: str = ""  # the alert's (rule + labels): a second FIRING for an open one is a double page


class PageReceiver:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.pages: list[Page] = []
        self.refused = 0
        self._lock = threading.Lock()
        self._fail_status: int | None = None
        self._fail_until = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver._failing()
                if status is not None:
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", "1")
                    self.end_headers()
                    return
                try:
                    doc = json.loads(body)
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                receiver._record(doc)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="chaos-pager", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def start(self) -> PageReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail(self, status: int, seconds: float) -> None:
        """Answer `status` (429 with Retry-After: 1, or a 5xx) to every request for `seconds` (0: stop failing)."""
        with self._lock:
            self._fail_status, self._fail_until = status, time.time() + seconds

    def _failing(self) -> int | None:
        with self._lock:
            if self._fail_status is not None and time.time() < self._fail_until:
                self.refused += 1
                return self._fail_status
            return None

    def _record(self, doc: dict) -> None:
        now = time.time()
        with self._lock:
            for a in doc.get("alerts", []):
                self.pages.append(
                    Page(
                        now,
                        str(doc.get("kind", "")),
                        str(a.get("rule", "")),
                        str(a.get("state", "")),
                        str(doc.get("idempotency_key", "")),
                        str(a.get("fingerprint", "")),
                    )
                )

    def since(self, t: float) -> list[Page]:
        with self._lock:
            return [p for p in self.pages if p.at >= t]
