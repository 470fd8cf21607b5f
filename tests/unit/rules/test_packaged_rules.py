"""The default rule set ships inside the package and is what the daemon evaluates when no rules are configured."""

import os
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from watchtower.cli.app import app
from watchtower.daemon.config import AlertingConfig
from watchtower.rules.config import check_rules
from watchtower.rules.packaged import packaged_rules, rule_paths

REPO_ALERTS = Path(__file__).resolve().parents[3] / "alerts"


def test_packaged_rules_are_the_repository_alerts_directory_and_valid():
    path = packaged_rules()
    assert (path / "default.yaml").is_file()
    # This checkout is installed editable: the package data is the top-level alerts/ itself (one source).
    assert path.resolve() == REPO_ALERTS
    ruleset, problems = check_rules(path)
    assert problems == []
    assert "consumer-lag-messages-high" in {r.name for r in ruleset.rules}


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        (None, "packaged"),
        ((Path("mine.yaml"),), (Path("mine.yaml"),)),
        ((Path("a"), Path("b.yaml")), (Path("a"), Path("b.yaml"))),
    ],
)
def test_rule_paths_prefer_the_configured_ones(configured, expected):
    want = (packaged_rules(),) if expected == "packaged" else expected
    assert rule_paths(configured) == want


def test_alerting_rules_default_to_unset_and_an_explicit_empty_list_is_an_error():
    assert AlertingConfig().rules is None
    assert AlertingConfig(rules=["x.yaml"]).rules == (Path("x.yaml"),)
    with pytest.raises(ValidationError, match="list at least one rule file"):
        AlertingConfig(rules=[])


def test_rules_check_without_a_path_checks_the_packaged_rules(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no alerts/ here
    result = CliRunner().invoke(app, ["rules", "check"])
    assert result.exit_code == 0, result.output
    assert f"checking the packaged default rules in {packaged_rules()}" in result.output
    assert "rules OK: 20 rules in 2 file(s)" in result.output


def test_config_check_names_the_packaged_rules_when_none_are_configured(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in [k for k in os.environ if k.startswith("WATCHTOWER")]:
        monkeypatch.delenv(name)
    result = CliRunner().invoke(app, ["config", "check"])
    assert result.exit_code == 0, result.output
    assert "alerting.rules is not set: the packaged default rules in" in result.output
