"""`watchtower chaos` without a stack: list, check, --dry-run (touches nothing) and the safety refusal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from watchtower.cli.app import app
from watchtower.config.chaos import target_refusal

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def repo_cwd(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("WATCHTOWER__KAFKA__BOOTSTRAP_SERVERS", raising=False)


SAFETY = [
    ("1 embedded stack", None, (), None),
    ("2 external, not allowed", "kafka:9092", (), "not the embedded stack"),
    ("3 external, allowed", "kafka:9092", ("kafka:9092",), None),
    ("4 allowed list must match exactly", "kafka:9092,kafka2:9092", ("kafka:9092",), "chaos.allow"),
]


@pytest.mark.parametrize("case,servers,allow,refused", SAFETY, ids=[s[0] for s in SAFETY])
def test_target_refusal(case, servers, allow, refused) -> None:
    got = target_refusal(servers, allow)
    assert (got is None) if refused is None else (refused in got)


def test_list_and_check() -> None:
    r = CliRunner().invoke(app, ["chaos", "list"])
    assert r.exit_code == 0 and "clock-skew-year" in r.output
    r = CliRunner().invoke(app, ["chaos", "check"])
    assert r.exit_code == 0 and r.output.startswith("scenarios OK: ")


def test_check_reports_file_line_and_fix(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\npurpose: a purpose here\nmethod:\n  - {fault: pause_process, with: {target: kafka}}\n"
    )
    r = CliRunner().invoke(app, ["chaos", "check", str(bad)])
    assert r.exit_code == 1
    assert f"{bad}:4: method.0.with.target:" in r.output


def test_dry_run_prints_the_plan_and_starts_nothing(tmp_path: Path) -> None:
    env = {"WATCHTOWER__STACK__STATE_DIR": str(tmp_path / "state")}
    r = CliRunner().invoke(app, ["chaos", "run", "broker-pause", "--dry-run"], env=env)
    assert r.exit_code == 0, r.output
    assert "t+   0.0s start pause_process" in r.output and "t+  12.0s stop  pause_process" in r.output
    assert not (tmp_path / "state").exists()


def test_an_external_cluster_is_refused_unless_allowed(tmp_path: Path) -> None:
    env = {
        "WATCHTOWER__KAFKA__BOOTSTRAP_SERVERS": "prod-kafka:9092",
        "WATCHTOWER__STACK__STATE_DIR": str(tmp_path / "s"),
    }
    r = CliRunner().invoke(app, ["chaos", "run", "burst"], env={**os.environ, **env})
    assert r.exit_code == 1 and "chaos.allow" in r.output
    assert not (tmp_path / "s").exists()


def test_unknown_scenario_names_the_known_ones() -> None:
    r = CliRunner().invoke(app, ["chaos", "run", "no-such-thing", "--dry-run"])
    assert r.exit_code == 1 and "unknown scenario(s) no-such-thing" in r.output and "burst" in r.output
