"""The chaos daemon as a process: its config file holds no secret (they go through its environment) and
loads as `watchtower run` loads it; a /metrics scrape reads back under the metric names rules and probes
use; docs/chaos.md lists every shipped scenario."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from watchtower.chaos.env import chaos_config, daemon_config, parse_metrics
from watchtower.chaos.faults import params_models
from watchtower.chaos.scenario import check_scenarios
from watchtower.chaos.steady import steady
from watchtower.collectors.pipeline_outcomes import SPECS as OUTCOME_SPECS
from watchtower.contract import CHAOS_FAULTS
from watchtower.core.health import CollectorHealth
from watchtower.core.history import History
from watchtower.core.types import Reading, Sample, labels
from watchtower.exposition.prometheus import SnapshotCollector
from watchtower.settings import WatchtowerConfig, load_config

ROOT = Path(__file__).resolve().parents[3]


def test_the_daemon_config_holds_no_secret_and_loads_as_watchtower_run_loads_it(tmp_path: Path) -> None:
    cfg = chaos_config(
        WatchtowerConfig.model_validate(
            {"kafka": {"sasl_password": "hunter2", "secrets": {"ssl.key.password": "s3cret"}}}
        ),
        tmp_path,
    )
    token = "xoxb-chaos-0123456789abcdef"
    doc, env = daemon_config(
        cfg,
        "127.0.0.1:9092",
        "redis://:pw@127.0.0.1:6390/0",
        9999,
        "http://127.0.0.1:1/api/",
        token,
        "wt:chaos:x:",
    )
    path = tmp_path / "daemon.yaml"
    path.write_text(yaml.safe_dump(doc))
    text = path.read_text()
    for secret in ("hunter2", "s3cret", ":pw@", token, "xoxb-", "**********"):
        assert secret not in text
    loaded = load_config(path, env)
    assert loaded.kafka.sasl_password.get_secret_value() == "hunter2"
    assert loaded.kafka.secrets["ssl.key.password"].get_secret_value() == "s3cret"
    assert loaded.redis.url.get_secret_value() == "redis://:pw@127.0.0.1:6390/0"
    pager = loaded.alerting.notifiers["pager"]
    assert (pager.kind, pager.mode, pager.token.get_secret_value()) == ("slack", "web_api", token)
    assert (pager.base_url, pager.channel) == ("http://127.0.0.1:1/api/", "CCHAOS")
    # page_errors refuses pages for 8 s: a retried page must not wait much longer than that
    assert pager.max_inline_wait <= 3 and pager.backoff_cap <= 1 and loaded.alerting.backoff_cap <= 2
    assert loaded.alerting.redis_prefix == "wt:chaos:x:" and loaded.alerting.startup_grace > 0
    assert (loaded.daemon.http.host, loaded.daemon.http.port) == ("127.0.0.1", 9999)
    assert loaded.daemon.collectors.pipeline_outcomes.window == 10.0
    # the faults the runner records in Redis become watchtower_chaos_fault_active (dashboard annotations)
    assert loaded.daemon.collectors.chaos.enabled and loaded.daemon.collectors.chaos.interval == 1.0
    assert loaded.daemon.collectors.chaos.key == CHAOS_FAULTS
    assert loaded.pipeline.data_dir == (tmp_path / "data").resolve()
    assert loaded.pipeline.watermark_delay == cfg.pipeline.watermark_delay


def test_a_secret_the_env_cannot_carry_is_refused() -> None:
    cfg = WatchtowerConfig.model_validate({"daemon": {"otlp_endpoint": "**********"}})
    with pytest.raises(ValueError, match="daemon.otlp_endpoint: a secret would be written masked"):
        daemon_config(cfg, "b:1", "redis://r", 1, "http://p/api/", "xoxb-t", "x:")


def test_a_scrape_reads_back_under_the_names_rules_and_probes_use() -> None:
    history = History(10)
    samples = (
        Sample("watchtower_pipeline_records_total", labels(engine="spark", job="j", outcome="dlq"), 7.0),
        Sample("watchtower_pipeline_outcome_share", labels(engine="spark", job="j", outcome="late"), 0.2),
    )
    history.append(Reading("pipeline_outcomes", 1.0, samples))
    registry = CollectorRegistry(auto_describe=False)
    health = {"pipeline_outcomes": CollectorHealth("pipeline_outcomes", 1.0, up=True)}
    registry.register(SnapshotCollector(history, {"pipeline_outcomes": OUTCOME_SPECS}, lambda: health))
    got = parse_metrics(generate_latest(registry).decode(), 2.0)
    names = {s.metric for s in got.samples}
    assert set(s.metric for s in samples) <= names
    assert not any(n.endswith("_created") for n in names)
    assert {s for s in got.samples if s.metric.startswith("watchtower_pipeline")} == set(samples)
    from watchtower.chaos.scenario import Probe

    probe = Probe(name="late", metric='watchtower_pipeline_outcome_share{outcome="late"}', max=0.1)
    assert [(p.value, p.holds) for p in steady([probe], [got])] == [(0.2, False)]


def test_docs_list_every_shipped_scenario_and_their_count() -> None:
    scenarios, problems = check_scenarios(ROOT / "chaos" / "scenarios", params_models())
    assert not problems
    doc = (ROOT / "docs" / "chaos.md").read_text()
    table = doc.split("## Scenarios", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([a-z0-9-]+)` \|", table, re.M)
    assert sorted(listed) == sorted(s.name for s in scenarios)
    assert f"({len(scenarios)} scenarios" in table
