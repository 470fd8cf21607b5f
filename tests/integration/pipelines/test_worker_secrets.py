"""A real worker process receives its Kafka secrets intact, through the environment only.

The check that can fail: the workers authenticate with OAUTHBEARER/OIDC, so librdkafka in each worker asks
a token endpoint for a token with the client id and the client secret (HTTP Basic, grant_type
client_credentials, as an OAuth 2.0 token endpoint takes it). The endpoint here is a local one that records
the credentials it is sent; a worker that got '**********' sends exactly that. The broker never sees a
token (tansu has no SASL), which does not matter: the secret has reached librdkafka by then.
"""

from __future__ import annotations

import base64
import http.server
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from pipelines.workers.enricher import WorkerSettings
from pipelines.workers.pool import WorkerPool
from watchtower.config.models import KafkaConfig, WorkersConfig

pytestmark = pytest.mark.integration

CLIENT_ID = "wt-enricher"
SECRET = "oidc-s3cret-9f2c"
SASL_PASSWORD = "sasl-pw-51e0"


class TokenEndpoint(http.server.ThreadingHTTPServer):
    """Records (client id, secret) of every well-formed client-credentials request; answers 401 (no token)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.credentials: list[tuple[str, str]] = []
        self.malformed: list[str] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/token"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: TokenEndpoint

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        auth = self.headers.get("Authorization", "")
        if (
            self.path != "/token"
            or self.headers.get("Content-Type") != "application/x-www-form-urlencoded"
            or parse_qs(body).get("grant_type") != ["client_credentials"]
            or not auth.startswith("Basic ")
        ):
            self.server.malformed.append(f"{self.path} {dict(self.headers)} {body}")
        else:
            user, _, password = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
            self.server.credentials.append((user, password))
        self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_worker_processes_receive_the_secrets_through_the_environment(
    bootstrap, redis_url, topic_factory, group_factory, tmp_path: Path, caplog
) -> None:
    endpoint = TokenEndpoint()
    kafka = KafkaConfig(
        client={
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "OAUTHBEARER",
            "sasl.oauthbearer.method": "oidc",
            "sasl.oauthbearer.client.id": CLIENT_ID,
            "sasl.oauthbearer.token.endpoint.url": endpoint.url,
        },
        secrets={"sasl.oauthbearer.client.secret": SECRET},
        sasl_password=SASL_PASSWORD,
    )
    settings = WorkerSettings(
        bootstrap=bootstrap,
        redis_url=redis_url,
        topic=topic_factory("secrets"),
        group=group_factory("secrets"),
        kafka=kafka,
        workers=WorkersConfig(count=2, session_timeout=6.0, max_poll_interval=10.0),
    )
    log_path = tmp_path / "workers.log"
    caplog.set_level("DEBUG")
    with WorkerPool(settings, log_path=log_path, log_level="DEBUG") as pool:
        pids = pool.pids()
        assert len(pids) == 2
        for pid in pids:  # never on the command line (`ps` shows it to every user)
            assert SECRET.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(endpoint.credentials) < 2:
            threading.Event().wait(0.2)
        assert pool.pids() == pids, "a worker died"
    endpoint.shutdown()
    assert not endpoint.malformed
    assert len(endpoint.credentials) >= 2, f"no token request from both workers:\n{log_path.read_text()}"
    assert set(endpoint.credentials) == {(CLIENT_ID, SECRET)}
    logs = log_path.read_text() + caplog.text
    assert "enricher started" in logs
    for secret in (SECRET, SASL_PASSWORD):
        assert secret not in logs
