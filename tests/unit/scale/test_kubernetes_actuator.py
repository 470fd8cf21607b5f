"""The Kubernetes actuator through the official client against a local API endpoint that checks every
request as the API server takes it: path, verb, bearer token, PATCH content type and body; it answers with
autoscaling/v1 Scale objects and Status errors, as the API server does."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from watchtower.scale.actuators.kubernetes import Config, build
from watchtower.scale.base import ActuatorError

TOKEN = "kube-token-5ecret-do-not-log"
PATH = re.compile(
    r"^/apis/apps/v1/namespaces/(?P<ns>[a-z0-9-]+)/(?P<plural>deployments|statefulsets)/(?P<name>[a-z0-9-]+)/scale$"
)
PATCH_TYPES = {"application/strategic-merge-patch+json", "application/merge-patch+json"}


class FakeApiServer:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], int] = {}  # (ns, plural, name) -> spec.replicas
        self.requests: list[dict] = []
        self.problems: list[str] = []
        self.refuse: dict[str, tuple[int, str]] = {}  # verb -> (code, reason) for the next calls
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.version = 100

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def scale(self, ns: str, plural: str, name: str, replicas: int) -> dict:
        self.version += 1
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": name,
                "namespace": ns,
                "uid": "0b8c4a3e-7d1f-4c5a-9e0b-1f2d3c4b5a69",
                "resourceVersion": str(self.version),
                "creationTimestamp": "2026-11-30T03:00:00Z",
            },
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas, "selector": f"app={name}"},
        }

    @staticmethod
    def status(code: int, reason: str, message: str) -> dict:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict]:
        self.requests.append({"method": method, "path": path, "headers": headers, "body": raw})
        if headers.get("authorization") != f"Bearer {TOKEN}":
            return 401, self.status(401, "Unauthorized", "Unauthorized")
        m = PATH.match(path.split("?")[0])
        if not m:
            self.problems.append(f"unexpected path {path}")
            return 404, self.status(404, "NotFound", "the server could not find the requested resource")
        if "application/json" not in headers.get("accept", ""):
            self.problems.append(f"accept {headers.get('accept')!r}")
        key = (m["ns"], m["plural"], m["name"])
        what = f'{m["plural"]}.apps "{m["name"]}"'
        verb = {"GET": "get", "PATCH": "patch"}.get(method)
        if verb is None:
            self.problems.append(f"unexpected verb {method}")
            return 405, self.status(405, "MethodNotAllowed", "the server does not allow this method")
        if verb in self.refuse:
            code, reason = self.refuse[verb]
            msg = {
                403: f'{what} is forbidden: User "system:serviceaccount:ops:watchtower" cannot {verb} resource '
                f'"{m["plural"]}/scale" in API group "apps" in the namespace "{m["ns"]}"',
                409: f"Operation cannot be fulfilled on {what}: the object has been modified; please apply your "
                "changes to the latest version and try again",
            }.get(code, reason)
            return code, self.status(code, reason, msg)
        if key not in self.objects:
            return 404, self.status(404, "NotFound", f"{what} not found")
        if verb == "patch":
            ctype = headers.get("content-type", "")
            if ctype not in PATCH_TYPES:
                self.problems.append(f"PATCH content type {ctype!r}")
                return 415, self.status(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: {sorted(PATCH_TYPES)}",
                )
            body = json.loads(raw)
            if (
                set(body) != {"spec"}
                or set(body["spec"]) != {"replicas"}
                or not isinstance(body["spec"]["replicas"], int)
            ):
                self.problems.append(f"PATCH body {body!r}")
                return 422, self.status(422, "Invalid", "invalid patch")
            self.objects[key] = body["spec"]["replicas"]
        return 200, self.scale(*key, self.objects[key])

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                code, doc = fake.handle(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, raw
                )
                out = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_PATCH = do_PUT = do_POST = _serve  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    fake = FakeApiServer()
    t = threading.Thread(target=fake.server.serve_forever, daemon=True)
    t.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def kubeconfig(tmp_path: Path, api: FakeApiServer) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "test",
                "clusters": [{"name": "local", "cluster": {"server": api.url}}],
                "users": [{"name": "wt", "user": {"token": TOKEN}}],
                "contexts": [
                    {"name": "test", "context": {"cluster": "local", "user": "wt", "namespace": "ops"}}
                ],
            }
        )
    )
    return path


def test_reads_and_patches_the_deployment_scale_subresource(api: FakeApiServer, kubeconfig: Path) -> None:
    api.objects[("ops", "deployments", "enricher")] = 2
    a = build("enricher", Config(kind="kubernetes", name="enricher", namespace="ops", kubeconfig=kubeconfig))
    assert api.requests == []  # building connects nowhere
    assert a.current() == 2
    result = a.apply(5)
    assert result.ok and result.applied == 5 and result.how == "scale-subresource"
    assert api.objects[("ops", "deployments", "enricher")] == 5 and a.current() == 5
    get, patch, _ = api.requests
    assert get["method"] == "GET" and get["path"] == "/apis/apps/v1/namespaces/ops/deployments/enricher/scale"
    assert patch["method"] == "PATCH" and patch["path"] == get["path"]
    assert patch["headers"]["content-type"] == "application/strategic-merge-patch+json"
    assert json.loads(patch["body"]) == {"spec": {"replicas": 5}}
    assert api.problems == []
    a.close()


def test_statefulset(api: FakeApiServer, kubeconfig: Path) -> None:
    api.objects[("stream", "statefulsets", "flink-tm")] = 1
    a = build(
        "tm",
        Config(
            kind="kubernetes",
            name="flink-tm",
            namespace="stream",
            resource="statefulset",
            kubeconfig=kubeconfig,
        ),
    )
    assert a.apply(3).applied == 3 and a.current() == 3
    assert {r["path"] for r in api.requests} == {
        "/apis/apps/v1/namespaces/stream/statefulsets/flink-tm/scale"
    }
    assert api.problems == []


@pytest.mark.parametrize(
    ("code", "reason", "expect"),
    [
        (403, "Forbidden", "grant get and patch on deployments/scale in namespace ops"),
        (409, "Conflict", "the next cycle tries again"),
    ],
)
def test_refusals_become_clear_errors_without_the_token(
    api: FakeApiServer, kubeconfig: Path, code, reason, expect
) -> None:
    api.objects[("ops", "deployments", "enricher")] = 2
    api.refuse["patch"] = (code, reason)
    result = build(
        "enricher", Config(kind="kubernetes", name="enricher", namespace="ops", kubeconfig=kubeconfig)
    ).apply(4)
    assert not result.ok and result.applied is None
    assert f"{code} {reason}" in result.error and expect in result.error
    assert TOKEN not in result.error
    assert api.objects[("ops", "deployments", "enricher")] == 2


def test_missing_object_and_bad_token(api: FakeApiServer, kubeconfig: Path, tmp_path: Path) -> None:
    a = build("x", Config(kind="kubernetes", name="nope", namespace="ops", kubeconfig=kubeconfig))
    result = a.apply(1)
    assert "404 Not Found" in result.error and "deployment ops/nope not found" in result.error
    with pytest.raises(ActuatorError, match="404"):
        a.current()
    bad = tmp_path / "bad"
    bad.write_text(kubeconfig.read_text().replace(TOKEN, "wrong-token-also-secret"))
    err = build("x", Config(kind="kubernetes", name="nope", namespace="ops", kubeconfig=bad)).apply(1).error
    assert "401" in err and "wrong-token-also-secret" not in err


def test_unreachable_server_and_unreadable_kubeconfig(tmp_path: Path) -> None:
    cfg = tmp_path / "kc"
    cfg.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [{"name": "l", "cluster": {"server": "http://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": TOKEN}}],
                "contexts": [{"name": "c", "context": {"cluster": "l", "user": "u"}}],
            }
        )
    )
    err = build("x", Config(kind="kubernetes", name="e", kubeconfig=cfg, timeout=2)).apply(1).error
    assert "failed" in err and TOKEN not in err
    missing = build("x", Config(kind="kubernetes", name="e", kubeconfig=tmp_path / "absent"))
    with pytest.raises(ActuatorError, match="cannot load credentials"):
        missing.current()
