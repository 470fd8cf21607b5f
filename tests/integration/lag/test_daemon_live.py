"""The daemon as a whole: HTTP endpoints, a broker that dies and comes back, signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from lag_helpers import await_condition, commit, produce
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from watchtower.config.models import KafkaConfig
from watchtower.daemon.config import DaemonConfig
from watchtower.daemon.daemon import Daemon, build_collectors
from watchtower.stack.broker import EmbeddedBroker
from watchtower.stack.process import free_port

pytestmark = pytest.mark.integration


def daemon_config(group: str, interval: float = 0.3, timeout: float = 0.5) -> DaemonConfig:
    return DaemonConfig.model_validate(
        {
            "http": {"port": 0},
            "collectors": {"kafka_lag": {"interval": interval, "timeout": timeout, "groups_allow": [group]}},
        }
    )


def scrape(url: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for fam in text_string_to_metric_families(httpx.get(url + "/metrics").text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def collector_up(url: str) -> bool | None:
    return httpx.get(url + "/api/v1/status", timeout=5).json()["collectors"]["kafka_lag"]["up"]


def test_http_endpoints_answer_and_metrics_parse(bootstrap: str, topic_factory, group_factory) -> None:
    topic, group = topic_factory("http", partitions=2), group_factory("http")
    produce(bootstrap, topic, {0: 4, 1: 2})
    commit(bootstrap, group, {(topic, 0): 1, (topic, 1): 2})
    spans = InMemorySpanExporter()
    cfg = daemon_config(group)
    d = Daemon(
        build_collectors(cfg, KafkaConfig(bootstrap_servers=bootstrap)),
        cfg,
        span_processors=[SimpleSpanProcessor(spans)],
    ).start()
    try:
        assert d.http.host == "127.0.0.1"
        await_condition(lambda: collector_up(d.http.url), 15, "the first cycle")
        assert httpx.get(d.http.url + "/healthz").text == "ok\n"
        m = scrape(d.http.url)
        lag = m["watchtower_consumer_lag_messages"]
        assert lag[(("group", group), ("partition", "0"), ("topic", topic))] == 3.0
        assert lag[(("group", group), ("partition", "1"), ("topic", topic))] == 0.0
        assert m["watchtower_collector_up"][(("collector", "kafka_lag"),)] == 1.0
        status = httpx.get(d.http.url + "/api/v1/status").json()
        assert (
            status["snapshot"]["kafka_lag"]["detail"]["groups"][group]["topics"][topic]["lag_messages"] == 3
        )
        full = httpx.get(d.http.url + "/api/v1/status?samples=1").json()
        assert any(
            s["metric"] == "watchtower_consumer_lag_seconds" for s in full["snapshot"]["kafka_lag"]["samples"]
        )
        assert httpx.get(d.http.url + "/nope").status_code == 404
    finally:
        d.stop()
    names = {s.name for s in spans.get_finished_spans()}
    assert names == {"watchtower.collect"}
    assert "kafka_lag" in {s.attributes["watchtower.collector"] for s in spans.get_finished_spans()}


def test_daemon_survives_the_broker_going_away_and_recovers(tmp_path, group_factory) -> None:
    port = free_port()
    broker = EmbeddedBroker(port=port, log_path=tmp_path / "tansu.log", die_with_parent=True).start()
    group = group_factory("fault")
    cfg = daemon_config(group)
    d = Daemon(build_collectors(cfg, KafkaConfig(bootstrap_servers=broker.bootstrap_servers)), cfg).start()
    try:
        await_condition(lambda: collector_up(d.http.url) is True, 15, "the collector to come up")
        broker.stop()
        await_condition(lambda: collector_up(d.http.url) is False, 20, "the collector to be reported down")
        assert httpx.get(d.http.url + "/healthz").status_code == 200  # the daemon itself stays up
        m = scrape(d.http.url)
        assert m["watchtower_collector_up"][(("collector", "kafka_lag"),)] == 0.0
        assert m["watchtower_collector_errors_total"][(("collector", "kafka_lag"),)] >= 1
        status = httpx.get(d.http.url + "/api/v1/status").json()["collectors"]["kafka_lag"]
        assert status["last_error"] and status["last_error_at"] >= status["last_success_at"]

        broker = EmbeddedBroker(
            port=port, log_path=tmp_path / "tansu2.log", die_with_parent=True
        ).start()  # back on the same port
        await_condition(lambda: collector_up(d.http.url) is True, 60, "the collector to recover")
    finally:
        d.stop()
        broker.stop()


def test_watchtower_run_stops_cleanly_on_sigterm(tmp_path) -> None:
    port = free_port()
    config = tmp_path / "watchtower.yaml"
    dead = f"127.0.0.1:{free_port()}"  # nothing listens: the collector is down, the daemon must still run
    config.write_text(
        f"kafka:\n  bootstrap_servers: '{dead}'\nalerting:\n  enabled: false\ndaemon:\n  http:\n    port: {port}\n  collectors:\n    kafka_lag:\n      interval: 0.5s\n      timeout: 0.5s\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "watchtower", "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        await_condition(healthy, 30, "watchtower run to serve /healthz")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert time.monotonic() - started < 10
        out = proc.stdout.read().decode()
        assert "watchtower daemon stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
