"""`watchtower dashboards build [--check]` and `watchtower rules export` from the command line."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from watchtower.cli.app import app

REPO = Path(__file__).resolve().parents[3]


def test_build_writes_boards_and_provisioning_and_check_catches_drift(tmp_path: Path) -> None:
    out = tmp_path / "dashboards"
    runner = CliRunner()
    built = runner.invoke(
        app,
        [
            "dashboards",
            "build",
            "--out",
            str(out),
            "--rules",
            str(REPO / "alerts"),
            "--prometheus-url",
            "http://prom:9090",
        ],
    )
    assert built.exit_code == 0, built.output
    assert sorted(p.name for p in out.glob("*.json")) == sorted(
        p.name for p in (REPO / "dashboards").glob("*.json")
    )
    ds = yaml.safe_load((out / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    assert ds["datasources"][0]["url"] == "http://prom:9090"
    check = ["dashboards", "build", "--check", "--out", str(out), "--rules", str(REPO / "alerts")]
    ok = runner.invoke(app, [*check, "--prometheus-url", "http://prom:9090"])
    assert ok.exit_code == 0 and "up to date" in ok.output, ok.output
    # --check compares the provisioning too: against another datasource URL they are out of date.
    other = runner.invoke(app, check)
    assert other.exit_code == 1
    assert "out of date: provisioning/datasources/prometheus.yaml;" in " ".join(other.output.split())
    assert "watchtower-kafka" not in other.output
    (out / "watchtower-kafka.json").write_text("{}")
    stale = runner.invoke(app, [*check, "--prometheus-url", "http://prom:9090"])
    assert stale.exit_code == 1 and "watchtower-kafka" in stale.output
    assert "provisioning" not in stale.output


def test_check_catches_a_changed_or_missing_provisioning_file(tmp_path: Path) -> None:
    out = tmp_path / "dashboards"
    runner = CliRunner()
    args = ["dashboards", "build", "--out", str(out), "--rules", str(REPO / "alerts")]
    assert runner.invoke(app, args).exit_code == 0
    provider = out / "provisioning" / "dashboards" / "watchtower.yaml"
    provider.write_text(
        provider.read_text().replace("updateIntervalSeconds: 30", "updateIntervalSeconds: 10")
    )
    changed = runner.invoke(app, [*args, "--check"])
    assert changed.exit_code == 1, changed.output
    assert "out of date: provisioning/dashboards/watchtower.yaml;" in " ".join(changed.output.split())
    (out / "provisioning" / "datasources" / "prometheus.yaml").unlink()
    missing = runner.invoke(app, [*args, "--check"])
    assert missing.exit_code == 1
    assert "provisioning/dashboards/watchtower.yaml, provisioning/datasources/prometheus.yaml" in " ".join(
        missing.output.split()
    )
    assert runner.invoke(app, args).exit_code == 0  # build rewrites both
    again = runner.invoke(app, [*args, "--check"])
    assert again.exit_code == 0, again.output


def test_build_refuses_broken_rules(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "rules:\n  - {name: a, kind: threshold, selector: watchtower_consumer_lag_mesages, bound: 1}\n"
    )
    result = CliRunner().invoke(
        app, ["dashboards", "build", "--out", str(tmp_path / "d"), "--rules", str(tmp_path / "r.yaml")]
    )
    assert result.exit_code == 1 and "did you mean watchtower_consumer_lag_messages?" in result.output
    assert not (tmp_path / "d").exists()


def test_rules_export_both_formats(tmp_path: Path) -> None:
    runner = CliRunner()
    prom = runner.invoke(app, ["rules", "export", str(REPO / "alerts"), "--format", "prometheus"])
    assert prom.exit_code == 0, prom.output
    groups = yaml.safe_load(prom.stdout)["groups"]
    alerts = [r for g in groups for r in g["rules"] if "alert" in r]
    assert {a["labels"]["watchtower_rule"] for a in alerts} >= {
        "consumer-lag-messages-high",
        "e2e-latency-slo-burn",
    }
    lag = next(a for a in alerts if a["alert"] == "consumer_lag_messages_high")
    assert lag["annotations"]["dashboard"].startswith(
        "http://localhost:3000/d/watchtower-sla/watchtower-sla?viewPanel="
    )
    am = runner.invoke(
        app,
        [
            "rules",
            "export",
            str(REPO / "alerts"),
            "--format",
            "alertmanager",
            "--out",
            str(tmp_path / "am.yml"),
        ],
    )
    assert am.exit_code == 0, am.output
    assert {r["name"] for r in yaml.safe_load((tmp_path / "am.yml").read_text())["receivers"]} == {
        "slack-page",
        "slack-ticket",
        "slack-info",
    }
