"""The /metrics output against the real Prometheus tools (a missing tool fails the test: see tests/binaries.py)."""

from __future__ import annotations

import subprocess

import httpx
import pytest
from binaries import require_binary
from lag_helpers import await_condition, commit, produce

from watchtower.config.models import KafkaConfig
from watchtower.daemon.config import DaemonConfig
from watchtower.daemon.daemon import Daemon, build_collectors
from watchtower.stack.process import free_port

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]


def need(binary: str) -> str:
    return require_binary(binary, "prometheus")


@pytest.fixture
def running_daemon(bootstrap: str, topic_factory, group_factory):
    topic, group = topic_factory("prom", partitions=2), group_factory("prom")
    produce(bootstrap, topic, {0: 5, 1: 1})
    commit(bootstrap, group, {(topic, 0): 2, (topic, 1): 1})
    cfg = DaemonConfig.model_validate(
        {"http": {"port": 0}, "collectors": {"kafka_lag": {"interval": 0.5, "groups_allow": [group]}}}
    )
    d = Daemon(build_collectors(cfg, KafkaConfig(bootstrap_servers=bootstrap)), cfg).start()
    await_condition(
        lambda: httpx.get(d.http.url + "/api/v1/status").json()["collectors"]["kafka_lag"]["up"],
        15,
        "the first cycle",
    )
    yield d, topic, group
    d.stop()


def test_promtool_accepts_the_metrics(running_daemon) -> None:
    promtool = need("promtool")
    d, _, _ = running_daemon
    body = httpx.get(d.http.url + "/metrics").content
    result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()


def test_a_real_prometheus_scrapes_the_lag_series(running_daemon, tmp_path) -> None:
    prometheus = need("prometheus")
    d, topic, group = running_daemon
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n"
        f"scrape_configs:\n  - job_name: watchtower\n    static_configs:\n      - targets: ['127.0.0.1:{d.http.port}']\n"
    )
    proc = subprocess.Popen(
        [
            prometheus,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    try:
        query = f'watchtower_consumer_lag_messages{{group="{group}",topic="{topic}",partition="0"}}'

        def lag_series():
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/query", params={"query": query}, timeout=2
                ).json()
            except (httpx.HTTPError, ValueError):
                return None
            return r["data"]["result"] if r.get("status") == "success" and r["data"]["result"] else None

        result = await_condition(lag_series, 60, "Prometheus to have scraped the lag series", interval=0.5)
        assert float(result[0]["value"][1]) == 3.0
    finally:
        proc.terminate()
        proc.wait(15)
