"""`watchtower run` started from an empty directory (no config file, no alerts/) evaluates the packaged rules."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from kafka_support import unique

from watchtower.rules.config import check_rules
from watchtower.rules.packaged import packaged_rules
from watchtower.stack.process import free_port

pytestmark = pytest.mark.integration

WATCHTOWER = Path(sys.executable).with_name("watchtower")


def _status(url: str) -> dict | None:
    try:
        r = httpx.get(url + "/api/v1/alerts", timeout=2)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


def test_run_from_an_empty_directory_uses_the_packaged_rules(tmp_path, bootstrap, redis_url):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHTOWER")}
    env |= {
        "PYTHONUNBUFFERED": "1",
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "REDIS_URL": redis_url,
        "WATCHTOWER__DAEMON__HTTP__PORT": str(port),
        "WATCHTOWER__ALERTING__REDIS_PREFIX": unique("wt-outside:") + ":",
    }
    log_path = tmp_path / "run.log"
    workdir = tmp_path / "empty"
    workdir.mkdir()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(WATCHTOWER), "run"], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, (
                f"watchtower run exited with {proc.returncode}:\n{log_path.read_text()}"
            )
            status = _status(url)
            if status and status["evaluation"]["cycles"] >= 1:
                break
            threading.Event().wait(0.2)
        assert status, f"no /api/v1/alerts within 60s:\n{log_path.read_text()}"
        packaged, problems = check_rules(packaged_rules())
        assert not problems
        evaluation = status["evaluation"]
        assert evaluation["rule_files"] == sorted(str(p) for p in packaged_rules().glob("*.yaml"))
        assert evaluation["rules"] == len(packaged.rules) > 0
        assert evaluation["cycles"] >= 1 and not evaluation["failing_rules"]
        assert "no such file or directory" not in log_path.read_text()
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode == 0, log_path.read_text()
