"""The Prometheus export against the real promtool: `check rules` on the shipped rules, and `test rules` unit
tests (input series, expected alerts with their labels and annotations) for every exported kind.

The promtool test file is generated here (CASES) against the export of a rule file with one rule per kind,
so a change to the export that breaks a kind's semantics fails here.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from binaries import require_binary

from watchtower.rules.config import load_rules
from watchtower.rules.export_prometheus import prometheus_yaml

pytestmark = pytest.mark.prometheus

REPO = Path(__file__).resolve().parents[3]

RULES = """
rules:
  - name: lag-high
    kind: threshold
    selector: watchtower_consumer_lag_messages{topic="t"}
    aggregate: max
    by: [group, topic]
    op: ">"
    bound: 100
    for: 2m
    severity: page
  - name: checkpoints-failing
    kind: rate
    selector: watchtower_checkpoints_failed_total
    by: [engine, job]
    op: ">"
    bound: 0
    window: 5m
  - name: lag-doubling
    kind: growth
    selector: watchtower_consumer_group_lag_messages{topic="t"}
    aggregate: sum
    by: [group, topic]
    factor: 2
    window: 10m
    floor: 100
    min_value: 500
  - name: lag-breach-predicted
    kind: time_to_breach
    selector: watchtower_consumer_lag_messages{topic="t"}
    aggregate: max
    by: [group, topic]
    op: ">"
    threshold: 1000
    window: 10m
    horizon: 15m
  - name: throughput-low
    kind: throughput_floor
    output: {selector: watchtower_records_in_per_second, aggregate: max}
    input: watchtower_topic_produce_rate_messages_per_second{topic="t"}
    floor: 100
    input_min: 100
    window: 2m
  - name: e2e-slo
    kind: burn_rate
    total: watchtower_e2e_events_total
    bad: watchtower_e2e_events_slow_total
    objective: 0.99
    windows: [{long: 1h, short: 5m, factor: 14.4, severity: page}]
  - name: status
    kind: consumer_status
    committed: watchtower_consumer_committed_offset{topic="t"}
    lag: watchtower_consumer_lag_messages{topic="t"}
"""


def humanize(v: float) -> str:
    """Prometheus' `humanize` template function (SI prefixes, %.4g)."""
    if v == 0 or math.isnan(v) or math.isinf(v):
        return f"{v:.4g}"
    if abs(v) >= 1:
        prefixes = ["", "k", "M", "G", "T"]
        i = 0
        while abs(v) >= 1000 and i < len(prefixes) - 1:
            v, i = v / 1000, i + 1
        return f"{v:.4g}{prefixes[i]}"
    prefixes = ["", "m", "u", "n", "p"]
    i = 0
    while abs(v) < 1 and i < len(prefixes) - 1:
        v, i = v * 1000, i + 1
    return f"{v:.4g}{prefixes[i]}"


def alert(rule: str, value: float, bound: str, severity: str = "ticket", **labels: str) -> dict[str, Any]:
    return {
        "exp_labels": {"severity": severity, "watchtower_rule": rule, "route": "default", **labels},
        "exp_annotations": {"summary": f"{rule}: {humanize(value)}{bound}"},
    }


LAG = {"group": "g", "topic": "t"}

CASES: list[dict[str, Any]] = [
    {  # threshold with for: 250 > 100 since 3m, so pending at 4m and firing from 5m
        "interval": "1m",
        "input_series": [
            {
                "series": 'watchtower_consumer_lag_messages{group="g",topic="t",partition="0"}',
                "values": "0+50x10",
            },
            {
                "series": 'watchtower_consumer_lag_messages{group="g",topic="t",partition="1"}',
                "values": "10x10",
            },
        ],
        "alert_rule_test": [
            {"eval_time": "2m", "alertname": "lag_high", "exp_alerts": []},
            {"eval_time": "4m", "alertname": "lag_high", "exp_alerts": []},
            {
                "eval_time": "5m",
                "alertname": "lag_high",
                "exp_alerts": [alert("lag-high", 250, " (bound 100)", "page", **LAG)],
            },
        ],
    },
    {  # rate: one failed checkpoint a minute over 5m, per minute
        "interval": "1m",
        "input_series": [
            {"series": 'watchtower_checkpoints_failed_total{engine="flink",job="j"}', "values": "0+1x20"}
        ],
        "alert_rule_test": [
            {
                "eval_time": "10m",
                "alertname": "checkpoints_failing",
                "exp_alerts": [alert("checkpoints-failing", 1, " (bound 0)", engine="flink", job="j")],
            },
        ],
    },
    {  # growth: 100 for 10m, then 1000: ten times the lowest value in the window, and above min_value
        "interval": "1m",
        "input_series": [
            {
                "series": 'watchtower_consumer_group_lag_messages{group="g",topic="t"}',
                "values": "100x10 1000x10",
            }
        ],
        "alert_rule_test": [
            {"eval_time": "9m", "alertname": "lag_doubling", "exp_alerts": []},
            {
                "eval_time": "15m",
                "alertname": "lag_doubling",
                "exp_alerts": [alert("lag-doubling", 10, " (bound 2)", **LAG)],
            },
            {"eval_time": "21m", "alertname": "lag_doubling", "exp_alerts": []},  # the window forgot the 100s
        ],
    },
    {  # time_to_breach: +50/min from 0; at 10m (500) the line reaches 1250 in 15m, past 1000
        "interval": "1m",
        "input_series": [
            {
                "series": 'watchtower_consumer_lag_messages{group="g",topic="t",partition="0"}',
                "values": "0+50x30",
            }
        ],
        "alert_rule_test": [
            {"eval_time": "4m", "alertname": "lag_breach_predicted", "exp_alerts": []},  # 200 + 750 < 1000
            {
                "eval_time": "10m",
                "alertname": "lag_breach_predicted",
                "exp_alerts": [alert("lag-breach-predicted", 1250, " (bound 1000)", **LAG)],
            },
        ],
    },
    {  # throughput_floor: 10 records/s out while 500/s come in; then input stops and so does the alert
        "interval": "1m",
        "input_series": [
            {
                "series": 'watchtower_records_in_per_second{engine="flink",job="j",vertex="v"}',
                "values": "10x20",
            },
            {
                "series": 'watchtower_topic_produce_rate_messages_per_second{topic="t"}',
                "values": "500x10 0x10",
            },
        ],
        "alert_rule_test": [
            {
                "eval_time": "5m",
                "alertname": "throughput_low",
                "exp_alerts": [alert("throughput-low", 10, " (bound 100)")],
            },
            {"eval_time": "18m", "alertname": "throughput_low", "exp_alerts": []},
        ],
    },
    {  # burn_rate: half the events are slow (burn 50x > 14.4x over 1h and 5m); a healthy SLO does not fire
        "interval": "1m",
        "input_series": [
            {"series": 'watchtower_e2e_events_total{source="spark"}', "values": "0+100x90"},
            {"series": 'watchtower_e2e_events_slow_total{source="spark"}', "values": "0+50x90"},
        ],
        "alert_rule_test": [
            {
                "eval_time": "70m",
                "alertname": "e2e_slo_1h_5m",
                "exp_alerts": [
                    {
                        "exp_labels": {
                            "severity": "page",
                            "watchtower_rule": "e2e-slo",
                            "route": "default",
                            "slo": "e2e-slo",
                        },
                        "exp_annotations": {
                            "summary": "e2e-slo: error budget burning over 14.4x over 1h and 5m (objective 0.99)"
                        },
                    }
                ],
            },
        ],
    },
    {  # burn_rate without slow events: the bad counter is absent and counts as zero, no alert
        "interval": "1m",
        "input_series": [{"series": 'watchtower_e2e_events_total{source="spark"}', "values": "0+100x90"}],
        "promql_expr_test": [
            {
                "expr": 'slo:sli_error:ratio_rate5m{slo="e2e-slo"}',
                "eval_time": "30m",
                "exp_samples": [{"labels": 'slo:sli_error:ratio_rate5m{slo="e2e-slo"}', "value": 0}],
            },
        ],
        "alert_rule_test": [{"eval_time": "70m", "alertname": "e2e_slo_1h_5m", "exp_alerts": []}],
    },
]


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    (tmp_path / "alerts.yaml").write_text(RULES)
    out = tmp_path / "rules.yml"
    out.write_text(prometheus_yaml(load_rules(tmp_path / "alerts.yaml")))
    return out


def test_promtool_checks_the_shipped_rules_export(tmp_path: Path) -> None:
    out = tmp_path / "default.rules.yml"
    out.write_text(prometheus_yaml(load_rules(REPO / "alerts")))
    r = subprocess.run(
        [require_binary("promtool"), "check", "rules", str(out)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout
    assert "# consumer-status (consumer_status): not exported" in out.read_text()


def test_every_exported_kind_passes_promtool_unit_tests(exported: Path) -> None:
    text = exported.read_text()
    assert "# status (consumer_status): not exported: consumer_status is Burrow's" in text
    alerts = {r["alert"] for g in yaml.safe_load(text)["groups"] for r in g["rules"] if "alert" in r}
    tested = {t["alertname"] for c in CASES for t in c.get("alert_rule_test", [])}
    assert alerts == tested, "every exported alert has a promtool case"
    tests = {"rule_files": [exported.name], "evaluation_interval": "1m", "tests": CASES}
    path = exported.parent / "rules_test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    r = subprocess.run(
        [require_binary("promtool"), "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=exported.parent,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_amtool_accepts_the_alertmanager_export(tmp_path: Path) -> None:
    from watchtower.rules.export_prometheus import alertmanager_config, alertmanager_yaml

    ruleset = load_rules(REPO / "alerts")
    out = tmp_path / "alertmanager.yml"
    out.write_text(alertmanager_yaml(ruleset, channel="#sla"))
    r = subprocess.run(
        [require_binary("amtool"), "check-config", str(out)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stdout + r.stderr
    cfg = alertmanager_config(ruleset)
    assert {r["name"] for r in cfg["receivers"]} == {"slack-page", "slack-ticket", "slack-info"}
    oncall = next(c for c in cfg["route"]["routes"] if c.get("matchers") == ['route="oncall"'])
    page = next(c for c in oncall["routes"] if c["receiver"] == "slack-page")
    assert (
        page["group_by"] == ["watchtower_rule"]
        and page["group_wait"] == "10s"
        and page["repeat_interval"] == "1h"
    )
    assert all(
        "api_url" not in s for r in cfg["receivers"] for s in r["slack_configs"]
    )  # the URL stays in a file
