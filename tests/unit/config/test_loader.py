import pytest

from watchtower.config import ConfigError
from watchtower.settings import load_config


def write(tmp_path, text):
    p = tmp_path / "wt.yaml"
    p.write_text(text)
    return p


def test_defaults_without_a_file():
    cfg = load_config(None, env={})
    assert cfg.pipeline.topic == "orders"
    assert cfg.pipeline.partitions == 6
    assert cfg.pipeline.watermark_delay == 600.0


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "pipeline:\n  partitions: 0\n",
            "wt.yaml:2: pipeline.partitions: Input should be greater than or equal to 1",
        ),
        (
            "pipeline:\n  topic: x\n  window_slide: 10x\n",
            "wt.yaml:3: pipeline.window_slide: '10x' is not a duration",
        ),
        ("generator:\n  rtae: 5\n", "wt.yaml:2: generator.rtae: unknown setting; check the spelling"),
        (
            "kafka:\n  client:\n    sasl.password: hunter2\n",
            "wt.yaml:2: kafka.client: sasl.password must not sit in kafka.client",
        ),
        ("- a\n- b\n", "wt.yaml:1: the file must be a mapping"),
        ("pipeline: [\n", "not valid YAML"),
    ],
)
def test_invalid_file_names_field_and_line(tmp_path, text, expected):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text), env={})
    assert expected in str(exc.value)


def test_secret_never_in_error_text(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, "kafka:\n  client:\n    sasl.password: hunter2\n"), env={})
    assert "hunter2" not in str(exc.value)


def test_environment_overrides_file_and_is_named_in_errors(tmp_path):
    path = write(tmp_path, "pipeline:\n  topic: from-file\n")
    cfg = load_config(path, env={"WATCHTOWER__PIPELINE__TOPIC": "from-env", "REDIS_URL": "redis://:pw@h:1/0"})
    assert cfg.pipeline.topic == "from-env"
    assert cfg.redis.url.get_secret_value() == "redis://:pw@h:1/0"
    assert "pw" not in repr(cfg.redis)
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={"WATCHTOWER__GENERATOR__RATE": "fast"})
    assert "environment WATCHTOWER__GENERATOR__RATE: generator.rate" in str(exc.value)


def test_durations_and_sizes(tmp_path):
    cfg = load_config(
        write(tmp_path, "pipeline:\n  trigger_interval: 500ms\n  redis_ttl: 2h\n  max_event_bytes: 1MiB\n"),
        env={},
    )
    assert cfg.pipeline.trigger_interval == 0.5
    assert cfg.pipeline.redis_ttl == 7200.0
    assert cfg.pipeline.max_event_bytes == 1024 * 1024


def test_sasl_password_reaches_librdkafka_but_not_repr():
    cfg = load_config(
        None, env={"WATCHTOWER__KAFKA__SASL_PASSWORD": "s3cret", "KAFKA_BOOTSTRAP_SERVERS": "k:9092"}
    )
    conf = cfg.kafka.librdkafka()
    assert conf["sasl.password"] == "s3cret" and conf["bootstrap.servers"] == "k:9092"
    assert "s3cret" not in repr(cfg) and "s3cret" not in cfg.model_dump_json()


def test_secret_librdkafka_keys_go_under_kafka_secrets(tmp_path):
    cfg = load_config(
        write(tmp_path, "kafka:\n  bootstrap_servers: k:1\n  secrets:\n    ssl.key.password: pem-pass\n"),
        env={},
    )
    assert cfg.kafka.librdkafka()["ssl.key.password"] == "pem-pass"
    assert "pem-pass" not in repr(cfg) and "pem-pass" not in cfg.model_dump_json()
