"""The daemon's one HTTP server: /metrics (Prometheus), /healthz (liveness), /api/v1/status,
/api/v1/alerts (while alerting is on) and /api/v1/scaling[/<target>] (while scaling targets are set).

stdlib ThreadingHTTPServer: a handful of endpoints do not need a framework. It binds 127.0.0.1 unless
configured otherwise. /healthz answers 200 while the daemon runs, whatever its collectors' state: a
collector being down is something to alert on (`watchtower_collector_up`), not a reason to restart us.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

log = logging.getLogger(__name__)


class HttpServer:
    def __init__(
        self,
        registry: CollectorRegistry,
        status: Callable[[bool], dict[str, Any]],
        host: str = "127.0.0.1",
        port: int = 0,
        alerts: Callable[[], dict[str, Any]] | None = None,
        scaling: Callable[[str | None], dict[str, Any] | None] | None = None,
    ):
        self.registry = registry
        self.status = status
        self.alerts = alerts
        self.scaling = scaling
        self.host = host
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> HttpServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                parts = urlsplit(self.path)
                try:
                    if parts.path == "/metrics":
                        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                        self._send(200, encoder(outer.registry), content_type)
                    elif parts.path == "/healthz":
                        self._send(200, b"ok\n", "text/plain; charset=utf-8")
                    elif parts.path == "/api/v1/status":
                        with_samples = parse_qs(parts.query).get("samples", ["0"])[0] in ("1", "true")
                        body = orjson.dumps(outer.status(with_samples), option=orjson.OPT_NON_STR_KEYS)
                        self._send(200, body, "application/json")
                    elif parts.path == "/api/v1/alerts" and outer.alerts is not None:
                        self._send(200, orjson.dumps(outer.alerts()), "application/json")
                    elif parts.path.startswith("/api/v1/scaling") and outer.scaling is not None:
                        self._scaling(parts.path.removeprefix("/api/v1/scaling").strip("/") or None)
                    else:
                        self._send(
                            404,
                            b"not found: try /metrics, /healthz, /api/v1/status or /api/v1/alerts\n",
                            "text/plain; charset=utf-8",
                        )
                except Exception:  # noqa: BLE001 - a bad request must not take the server down
                    log.exception("http handler failed", extra={"path": parts.path})
                    self._send(500, b"internal error\n", "text/plain; charset=utf-8")

            def _scaling(self, target: str | None) -> None:
                assert outer.scaling is not None
                doc = outer.scaling(target)
                if doc is None:
                    self._send(
                        404, orjson.dumps({"error": f"no scaling target {target!r}"}), "application/json"
                    )
                else:
                    self._send(200, orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS), "application/json")

            def _send(self, code: int, body: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                log.debug("http " + format, *args)

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="watchtower-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
