"""A local stand-in for the parts of Grafana's HTTP API that `watchtower dashboards push` uses, strict about requests.

It checks each request as Grafana takes it: the path and method, `Authorization: Bearer <token>`, a JSON
body with `Content-Type: application/json` on POST, and the body shapes of

    GET  /api/folders                     -> [{id, uid, title}]
    POST /api/folders {uid, title}        -> {id, uid, title, url, version}; 409 if the uid exists
    GET  /api/dashboards/uid/:uid         -> {dashboard, meta: {folderUid, version, slug, url}}; 404 if absent
    POST /api/dashboards/db {dashboard, folderUid, overwrite, message}
                                          -> {id, uid, url, status, version, slug}; the stored version + 1

Anything else is answered 404 and recorded in `problems`, as is any request that breaks these rules (the
test then fails on `problems`). Stored dashboards keep what was posted plus `id` and `version`, as Grafana does.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

TOKEN = "glsa_FaKeGrAfAnAtOkEn_0123456789abcdef"
DASHBOARD_KEYS = {"dashboard", "folderUid", "folderId", "overwrite", "message"}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeGrafana:
    url: str = ""
    requests: list[Request] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid -> {dashboard, folderUid}
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: int = 0

    def calls(self, method: str, path_re: str = ".*") -> list[Request]:
        return [r for r in self.requests if r.method == method and re.fullmatch(path_re, r.path)]

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    # ------------------------------------------------------------------------------------ handling

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                self.problems.append(f"{method} {path}: body is not JSON")
                return 400, {"message": "bad request data"}
        with self.lock:
            self.requests.append(Request(method, path, headers, body))
            if headers.get("authorization") != f"Bearer {TOKEN}":
                return 401, {"message": "Unauthorized"}
            if method == "POST" and not headers.get("content-type", "").startswith("application/json"):
                self.problems.append(
                    f"POST {path}: Content-Type is {headers.get('content-type')!r}, not application/json"
                )
                return 415, {"message": "unsupported media type"}
            if method == "GET" and path == "/api/folders":
                return 200, [
                    {"id": f["id"], "uid": f["uid"], "title": f["title"]} for f in self.folders.values()
                ]
            if method == "POST" and path == "/api/folders":
                return self._create_folder(body)
            m = re.fullmatch(r"/api/dashboards/uid/([A-Za-z0-9_-]{1,40})", path)
            if method == "GET" and m:
                return self._get_dashboard(m.group(1))
            if method == "POST" and path == "/api/dashboards/db":
                return self._save_dashboard(body)
            self.problems.append(f"unexpected request {method} {path}")
            return 404, {"message": "Not found"}

    def _create_folder(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("title"), str) or not body["title"]:
            self.problems.append(f"POST /api/folders: body must have a title: {body!r}")
            return 400, {"message": "folder title cannot be empty"}
        unknown = set(body) - {"uid", "title", "parentUid", "description"}
        if unknown:
            self.problems.append(f"POST /api/folders: unknown fields {sorted(unknown)}")
        uid = body.get("uid") or f"auto{self._ids}"
        if uid in self.folders:
            return 409, {"message": "a folder with the same uid already exists"}
        folder = {
            "id": self._next_id(),
            "uid": uid,
            "title": body["title"],
            "url": f"/dashboards/f/{uid}/",
            "version": 1,
        }
        self.folders[uid] = folder
        return 200, folder

    def _get_dashboard(self, uid: str) -> tuple[int, Any]:
        stored = self.dashboards.get(uid)
        if stored is None:
            return 404, {"message": "Dashboard not found"}
        d = stored["dashboard"]
        meta = {
            "folderUid": stored["folderUid"],
            "version": d["version"],
            "slug": uid,
            "url": f"/d/{uid}/{uid}",
            "type": "db",
        }
        return 200, {"dashboard": json.loads(json.dumps(d)), "meta": meta}

    def _save_dashboard(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("dashboard"), dict):
            self.problems.append(
                f"POST /api/dashboards/db: body must be an object with a dashboard object: {str(body)[:200]}"
            )
            return 400, {"message": "bad request data"}
        unknown = set(body) - DASHBOARD_KEYS
        if unknown:
            self.problems.append(f"POST /api/dashboards/db: unknown fields {sorted(unknown)}")
        d = body["dashboard"]
        if not d.get("title") or not d.get("uid"):
            self.problems.append("POST /api/dashboards/db: dashboard needs a title and a uid")
            return 400, {"message": "Dashboard title cannot be empty"}
        if not isinstance(body.get("overwrite", False), bool) or not isinstance(body.get("message", ""), str):
            self.problems.append("POST /api/dashboards/db: overwrite must be a bool and message a string")
        folder = body.get("folderUid", "")
        if folder and folder not in self.folders:
            return 400, {"message": "folder not found"}
        uid = d["uid"]
        existing = self.dashboards.get(uid)
        if (
            existing is not None
            and not body.get("overwrite")
            and d.get("version") != existing["dashboard"]["version"]
        ):
            return 412, {
                "message": "The dashboard has been changed by someone else",
                "status": "version-mismatch",
            }
        version = 1 if existing is None else existing["dashboard"]["version"] + 1
        dash_id = existing["dashboard"]["id"] if existing else self._next_id()
        stored = {**d, "id": dash_id, "version": version}
        self.dashboards[uid] = {"dashboard": stored, "folderUid": folder}
        return 200, {
            "id": dash_id,
            "uid": uid,
            "url": f"/d/{uid}/{uid}",
            "status": "success",
            "version": version,
            "slug": uid,
        }


def _handler(fake: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload = fake.handle(self.command, self.path.split("?")[0], headers, raw)
            out = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

    return Handler


@pytest.fixture
def fake_grafana() -> Iterator[FakeGrafana]:
    fake = FakeGrafana()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
