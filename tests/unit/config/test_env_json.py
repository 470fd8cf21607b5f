"""List and mapping settings from the environment, as JSON; plain strings stay strings."""

from pathlib import Path

import pytest

from watchtower.config import ConfigError
from watchtower.config.env import env_overrides, parse_value
from watchtower.settings import load_config


@pytest.mark.parametrize(
    ("raw", "value", "error"),
    [
        ('["a","b"]', ["a", "b"], None),
        ('  {"ssl.key.password": "pw"} ', {"ssl.key.password": "pw"}, None),
        ("[]", [], None),
        ("orders", "orders", None),
        ("", "", None),
        ("10s", "10s", None),
        ("123", "123", None),  # numbers stay strings: pydantic converts them for the field
        ("true", "true", None),
        ('"quoted"', '"quoted"', None),  # only [ and { switch to JSON
        ("[a, b]", "[a, b]", "Expecting value"),
        ('{"a": 1', '{"a": 1', "Expecting ',' delimiter"),
    ],
)
def test_parse_value(raw, value, error):
    got, why = parse_value(raw)
    assert got == value
    assert (why is None) if error is None else why.startswith(error)


def test_list_of_rule_paths_from_the_environment():
    cfg = load_config(None, env={"WATCHTOWER__ALERTING__RULES": '["a","b"]'})
    assert cfg.alerting.rules == (Path("a"), Path("b"))


def test_mapping_with_dotted_keys_from_the_environment_and_secrets_stay_masked():
    env = {
        "WATCHTOWER__KAFKA__CLIENT": '{"security.protocol": "SASL_SSL", "socket.timeout.ms": 5000}',
        "WATCHTOWER__KAFKA__SECRETS": '{"ssl.key.password": "hunter2"}',
        "WATCHTOWER__KAFKA__BOOTSTRAP_SERVERS": "k:9092",
    }
    cfg = load_config(None, env=env)
    assert cfg.kafka.client == {"security.protocol": "SASL_SSL", "socket.timeout.ms": 5000}
    assert cfg.kafka.secrets["ssl.key.password"].get_secret_value() == "hunter2"
    assert cfg.kafka.librdkafka()["ssl.key.password"] == "hunter2"
    assert "hunter2" not in cfg.model_dump_json()


def test_deeper_variable_wins_over_the_mapping_it_sits_in():
    env = {
        "WATCHTOWER__KAFKA__CLIENT__LINGER": "7",
        "WATCHTOWER__KAFKA__CLIENT": '{"linger": 1, "acks": "all"}',
    }
    assert env_overrides(env).values == {"kafka": {"client": {"linger": "7", "acks": "all"}}}


def test_plain_strings_stay_strings_even_when_they_look_like_broken_json():
    cfg = load_config(
        None, env={"WATCHTOWER__PIPELINE__TOPIC": "[orders", "WATCHTOWER__PIPELINE__PARTITIONS": "3"}
    )
    assert cfg.pipeline.topic == "[orders"
    assert cfg.pipeline.partitions == 3


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"WATCHTOWER__ALERTING__RULES": "[a, b]"},
            "environment WATCHTOWER__ALERTING__RULES: alerting.rules: Input should be a valid tuple "
            "(the value starts like JSON but is not valid JSON: Expecting value; write a JSON list or mapping "
            "with double-quoted strings and single quotes around it in the shell, "
            'e.g. WATCHTOWER__ALERTING__RULES=\'["a", "b"]\')',
        ),
        (
            {"WATCHTOWER__ALERTING__RULES": '["ok", 5]'},
            "environment WATCHTOWER__ALERTING__RULES: alerting.rules.1: Input is not a valid path",
        ),
        (
            {"WATCHTOWER__KAFKA__SECRETS": '{"ssl.key.password": 5}'},
            "environment WATCHTOWER__KAFKA__SECRETS: kafka.secrets.ssl.key.password: Input should be a valid string",
        ),
        (
            {"WATCHTOWER__PIPELINE__TOPIC": '["orders"]'},
            "environment WATCHTOWER__PIPELINE__TOPIC: pipeline.topic: Input should be a valid string "
            "(WATCHTOWER__PIPELINE__TOPIC starts with [ or { and was read as JSON",
        ),
    ],
)
def test_bad_values_name_the_variable_and_the_fix(env, expected):
    with pytest.raises(ConfigError) as exc:
        load_config(None, env=env)
    assert expected in str(exc.value)


def test_a_malformed_secret_mapping_never_shows_its_value():
    with pytest.raises(ConfigError) as exc:
        load_config(None, env={"WATCHTOWER__KAFKA__SECRETS": '{"ssl.key.password": "hunter2"'})
    text = str(exc.value)
    assert "environment WATCHTOWER__KAFKA__SECRETS: kafka.secrets: Input should be a valid dictionary" in text
    assert "not valid JSON" in text and "hunter2" not in text
