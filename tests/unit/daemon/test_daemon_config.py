from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from pydantic import ValidationError

from watchtower.collectors.kafka_lag.config import KafkaLagConfig
from watchtower.daemon.config import DaemonConfig
from watchtower.daemon.tracing import build_tracer_provider
from watchtower.settings import load_config


def test_defaults_bind_loopback_and_parse_durations() -> None:
    cfg = DaemonConfig.model_validate(
        {"collectors": {"kafka_lag": {"interval": "500ms", "inactive_group_retention": "10m"}}}
    )
    assert cfg.http.host == "127.0.0.1"
    assert cfg.collectors.kafka_lag.interval == 0.5
    assert cfg.collectors.kafka_lag.inactive_group_retention == 600.0


def test_a_bad_regex_names_its_field() -> None:
    with pytest.raises(ValidationError, match="groups_deny"):
        KafkaLagConfig(groups_deny=["(unclosed"])


def test_daemon_section_loads_from_the_config_file(tmp_path) -> None:
    f = tmp_path / "wt.yaml"
    f.write_text(
        "daemon:\n  http:\n    port: 9999\n  collectors:\n    kafka_lag:\n      groups_allow: ['app-.*']\n"
    )
    cfg = load_config(f)
    assert cfg.daemon.http.port == 9999
    assert cfg.daemon.collectors.kafka_lag.groups_allow == ["app-.*"]


def test_otlp_endpoint_adds_a_batch_exporter() -> None:
    provider = build_tracer_provider(otlp_endpoint="http://127.0.0.1:1/v1/traces")
    try:
        processors = provider._active_span_processor._span_processors
        assert any(isinstance(p, BatchSpanProcessor) for p in processors)
    finally:
        provider.shutdown()
    assert not build_tracer_provider()._active_span_processor._span_processors


def test_interval_policy_and_reading_driven_evaluation_are_configured_with_clear_errors(tmp_path) -> None:
    from watchtower.core.history import History
    from watchtower.daemon.config import AlertingConfig
    from watchtower.daemon.daemon import Daemon, build_alerting

    cfg = KafkaLagConfig.model_validate(
        {
            "interval_policy": {
                "enabled": True,
                "min_interval": "250ms",
                "max_interval": "8s",
                "cost_ratio": 0.2,
            }
        }
    )
    assert (cfg.interval_policy.min_interval, cfg.interval_policy.max_interval) == (0.25, 8.0)
    assert KafkaLagConfig().interval_policy.enabled is False  # opt in
    with pytest.raises(ValidationError, match="interval_policy.cost_ratio"):
        KafkaLagConfig.model_validate({"interval_policy": {"cost_ratio": 2}})
    with pytest.raises(ValidationError, match="busy"):
        AlertingConfig.model_validate({"busy": 0})

    rules = tmp_path / "r.yaml"
    rules.write_text(
        "rules:\n  - {name: r, kind: threshold, selector: watchtower_consumer_lag_messages, bound: 1}\n"
    )
    history = History(10)
    # No connection is made by building (Redis is only reached when the loop runs).
    on = build_alerting(AlertingConfig(rules=(rules,)), history, "redis://127.0.0.1:1/0")
    off = build_alerting(
        AlertingConfig(rules=(rules,), evaluate_on_readings=False), history, "redis://127.0.0.1:1/0"
    )
    d_on = Daemon([], DaemonConfig.model_validate({"http": {"port": 0}}), history=history, alerting=on)
    Daemon([], DaemonConfig.model_validate({"http": {"port": 0}}), history=history, alerting=off)
    assert on.readings is d_on.readings and d_on.runner.readings is d_on.readings
    assert off.readings is None  # the timer alone
