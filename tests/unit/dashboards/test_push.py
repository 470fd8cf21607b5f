"""`watchtower dashboards push` against a local Grafana API that checks every request as Grafana takes it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from grafana_fake import TOKEN, FakeGrafana
from typer.testing import CliRunner

from watchtower.cli.app import app

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def built(tmp_path: Path) -> Path:
    out = tmp_path / "dashboards"
    result = CliRunner().invoke(
        app, ["dashboards", "build", "--out", str(out), "--rules", str(REPO / "alerts")]
    )
    assert result.exit_code == 0, result.output
    return out


def push(fake: FakeGrafana, built: Path, *extra: str, token: str = TOKEN):
    return CliRunner().invoke(
        app,
        ["dashboards", "push", "--url", fake.url, "--dir", str(built), *extra],
        env={"GRAFANA_TOKEN": token},
    )


def test_first_push_creates_folder_and_every_dashboard_then_a_second_push_sends_nothing(
    fake_grafana: FakeGrafana, built: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    uids = sorted(json.loads(p.read_text())["uid"] for p in built.glob("*.json"))
    assert len(uids) >= 4

    first = push(fake_grafana, built)
    assert first.exit_code == 0, first.output
    assert fake_grafana.problems == []
    assert [r.path for r in fake_grafana.calls("GET", "/api/folders")] == ["/api/folders"]
    [folder] = fake_grafana.calls("POST", "/api/folders")
    assert folder.body == {"uid": "watchtower", "title": "watchtower"}
    assert (
        sorted(r.path.rsplit("/", 1)[1] for r in fake_grafana.calls("GET", "/api/dashboards/uid/.*")) == uids
    )
    posts = fake_grafana.calls("POST", "/api/dashboards/db")
    assert sorted(p.body["dashboard"]["uid"] for p in posts) == uids
    for p in posts:
        assert set(p.body) == {"dashboard", "folderUid", "overwrite", "message"}
        assert p.body["folderUid"] == "watchtower" and p.body["overwrite"] is True
        assert p.body["message"].startswith("watchtower dashboards push (")
        assert p.headers["authorization"] == f"Bearer {TOKEN}"
        assert p.headers["content-type"].startswith("application/json")
    assert {uid: d["dashboard"]["version"] for uid, d in fake_grafana.dashboards.items()} == dict.fromkeys(
        uids, 1
    )
    assert f"sent {len(uids)} of {len(uids)}" in first.output

    before = len(fake_grafana.requests)
    second = push(fake_grafana, built)
    assert second.exit_code == 0, second.output
    again = fake_grafana.requests[before:]
    assert {r.method for r in again} == {"GET"}, "a second push must send no change"
    assert {uid: d["dashboard"]["version"] for uid, d in fake_grafana.dashboards.items()} == dict.fromkeys(
        uids, 1
    )
    assert f"sent 0 of {len(uids)}" in second.output
    assert fake_grafana.problems == []

    for text in (first.output, second.output, caplog.text):
        assert TOKEN not in text


def test_a_changed_dashboard_is_the_only_one_sent_and_dry_run_sends_nothing(
    fake_grafana: FakeGrafana, built: Path
) -> None:
    assert push(fake_grafana, built).exit_code == 0
    path = built / "watchtower-kafka.json"
    d = json.loads(path.read_text())
    d["title"] = "watchtower / Kafka (edited)"
    path.write_text(json.dumps(d))

    before = len(fake_grafana.requests)
    dry = push(fake_grafana, built, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert {r.method for r in fake_grafana.requests[before:]} == {"GET"}
    assert "would update  watchtower-kafka  (differs in title)" in dry.output
    assert fake_grafana.dashboards["watchtower-kafka"]["dashboard"]["version"] == 1

    real = push(fake_grafana, built)
    assert real.exit_code == 0, real.output
    [post] = fake_grafana.calls("POST", "/api/dashboards/db")[-1:]
    assert post.body["dashboard"]["uid"] == "watchtower-kafka"
    assert len(fake_grafana.calls("POST", "/api/dashboards/db")) == 6  # five on the first push, one now
    assert fake_grafana.dashboards["watchtower-kafka"]["dashboard"]["version"] == 2
    assert fake_grafana.dashboards["watchtower-sla"]["dashboard"]["version"] == 1
    assert fake_grafana.problems == []


def test_a_wrong_token_fails_cleanly_without_printing_it(fake_grafana: FakeGrafana, built: Path) -> None:
    wrong = "glsa_WrOnGtOkEn_never_print_me"
    result = push(fake_grafana, built, token=wrong)
    assert result.exit_code == 1
    assert "401" in result.output and "push failed" in result.output
    assert wrong not in result.output
    assert fake_grafana.dashboards == {}


def test_the_token_can_come_from_a_file(fake_grafana: FakeGrafana, built: Path, tmp_path: Path) -> None:
    secret = tmp_path / "grafana-token"
    secret.write_text(TOKEN + "\n")
    result = CliRunner().invoke(
        app,
        ["dashboards", "push", "--url", fake_grafana.url, "--dir", str(built), "--token-file", str(secret)],
        env={},
    )
    assert result.exit_code == 0, result.output
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in fake_grafana.requests)
    assert TOKEN not in result.output


NO_TOKEN_ENV = {"GRAFANA_TOKEN": None, "WATCHTOWER_GRAFANA_TOKEN": None, "WATCHTOWER_CONFIG": None}


def _config(tmp_path: Path, **grafana: str) -> Path:
    path = tmp_path / "watchtower.yaml"
    path.write_text(
        "alerting: {enabled: false}\ngrafana:\n" + "".join(f"  {k}: {v}\n" for k, v in grafana.items())
    )
    return path


def _push_with_config(config: Path, built: Path, *extra: str, env: dict[str, str | None] | None = None):
    return CliRunner().invoke(
        app,
        ["--config", str(config), "dashboards", "push", "--dir", str(built), *extra],
        env={**NO_TOKEN_ENV, **(env or {})},
    )


def test_url_folder_and_token_from_the_config_token_never_shown(
    fake_grafana: FakeGrafana, built: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = _config(tmp_path, url=fake_grafana.url, folder="team-sla", token=TOKEN)
    result = _push_with_config(config, built)
    assert result.exit_code == 0, result.output
    assert fake_grafana.problems == []
    assert fake_grafana.requests and all(
        r.headers["authorization"] == f"Bearer {TOKEN}" for r in fake_grafana.requests
    )
    [folder] = fake_grafana.calls("POST", "/api/folders")
    assert folder.body == {"uid": "team-sla", "title": "team-sla"}
    assert {p.body["folderUid"] for p in fake_grafana.calls("POST", "/api/dashboards/db")} == {"team-sla"}
    shown = CliRunner().invoke(app, ["--config", str(config), "config", "check"], env=NO_TOKEN_ENV)
    assert shown.exit_code == 0, shown.output
    assert '"token": "**********"' in shown.output
    for text in (result.output, shown.output, caplog.text):
        assert TOKEN not in text


def test_a_wrong_token_from_the_config_fails_cleanly_without_showing_it(
    fake_grafana: FakeGrafana, built: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "glsa_CoNfIgWrOnG_never_print_me"
    result = _push_with_config(_config(tmp_path, url=fake_grafana.url, token=wrong), built)
    assert result.exit_code == 1, result.output
    assert "push failed" in result.output and "401" in result.output
    assert fake_grafana.requests and all(
        r.headers["authorization"] == f"Bearer {wrong}" for r in fake_grafana.requests
    )
    assert fake_grafana.dashboards == {}
    for text in (result.output, caplog.text, repr(result.exception)):
        assert wrong not in text


def test_the_token_from_the_environment_override_of_the_config(
    fake_grafana: FakeGrafana, built: Path, tmp_path: Path
) -> None:
    config = _config(tmp_path, url=fake_grafana.url)
    result = _push_with_config(config, built, env={"WATCHTOWER__GRAFANA__TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in fake_grafana.requests)
    assert TOKEN not in result.output


def test_flags_and_token_variables_win_over_the_config(
    fake_grafana: FakeGrafana, built: Path, tmp_path: Path
) -> None:
    # The config names a Grafana that is not there, another folder and a wrong token: all overridden.
    config = _config(tmp_path, url="http://127.0.0.1:9", folder="from-config", token="glsa_config_token")
    result = _push_with_config(
        config, built, "--url", fake_grafana.url, "--folder", "from-flag", env={"GRAFANA_TOKEN": TOKEN}
    )
    assert result.exit_code == 0, result.output
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in fake_grafana.requests)
    assert set(fake_grafana.folders) == {"from-flag"}
    secret = tmp_path / "grafana-token"
    secret.write_text(TOKEN + "\n")
    before = len(fake_grafana.requests)
    by_file = _push_with_config(
        config,
        built,
        "--url",
        fake_grafana.url,
        "--token-file",
        str(secret),
        env={"GRAFANA_TOKEN": "glsa_env"},
    )
    assert by_file.exit_code == 0, by_file.output
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in fake_grafana.requests[before:])


def test_without_a_url_anywhere_push_says_where_to_set_one(built: Path, tmp_path: Path) -> None:
    result = _push_with_config(_config(tmp_path, folder="x"), built)
    assert result.exit_code == 2
    assert "no Grafana URL: pass --url or set grafana.url (WATCHTOWER__GRAFANA__URL)" in " ".join(
        result.output.split()
    )
