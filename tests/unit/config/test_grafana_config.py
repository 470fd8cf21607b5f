"""The `grafana:` section: typed, the token a secret (masked), a bad URL named with the fix."""

import pytest

from watchtower.config import ConfigError
from watchtower.settings import load_config

TOKEN = "glsa_SeCrEt_grafana_token_123"


def test_defaults_and_values_from_the_file_and_the_environment(tmp_path):
    assert load_config(None, env={}).grafana.model_dump() == {
        "url": None,
        "folder": "watchtower",
        "token": None,
    }
    path = tmp_path / "wt.yaml"
    path.write_text(f"grafana:\n  url: http://grafana:3000\n  folder: sla\n  token: {TOKEN}\n")
    cfg = load_config(path, env={})
    assert (cfg.grafana.url, cfg.grafana.folder) == ("http://grafana:3000", "sla")
    assert cfg.grafana.token.get_secret_value() == TOKEN
    env = load_config(
        None, env={"WATCHTOWER__GRAFANA__TOKEN": TOKEN, "WATCHTOWER__GRAFANA__URL": "https://g"}
    )
    assert env.grafana.token.get_secret_value() == TOKEN and env.grafana.url == "https://g"
    for shown in (cfg.model_dump_json(), str(cfg), repr(cfg.grafana)):
        assert TOKEN not in shown


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "grafana:\n  url: grafana:3000\n",
            "wt.yaml:2: grafana.url: 'grafana:3000' is not an http(s) URL; e.g. http://localhost:3000",
        ),
        ("grafana:\n  tokn: x\n", "wt.yaml:2: grafana.tokn: unknown setting; check the spelling"),
    ],
)
def test_bad_values_name_the_field(tmp_path, text, expected):
    path = tmp_path / "wt.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    assert any(expected in p for p in exc.value.problems), exc.value.problems
