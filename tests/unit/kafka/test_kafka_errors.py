"""Error wrapping and secret redaction. Clients are created (librdkafka is in-process) but no broker is needed."""

import logging

import pytest
from confluent_kafka import KafkaError, KafkaException

from watchtower.config import KafkaConfig
from watchtower.kafka import KafkaClientError, client_config, masked, producer, redact

SECRET = "hunter2-s3cr3t"


@pytest.fixture
def sasl_cfg() -> KafkaConfig:
    return KafkaConfig(
        client={"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.username": "svc"},
        sasl_password=SECRET,
    )


def test_wrap_kafka_error():
    err = KafkaClientError.wrap(
        KafkaError(KafkaError.TOPIC_ALREADY_EXISTS, "Topic already exists", retriable=False)
    )
    assert err.code == "TOPIC_ALREADY_EXISTS"
    assert err.description == "Topic already exists"
    assert str(err) == "[TOPIC_ALREADY_EXISTS] Topic already exists"
    assert not err.retriable and not err.fatal


def test_wrap_kafka_exception_keeps_flags_and_adds_context():
    exc = KafkaException(KafkaError(KafkaError._TRANSPORT, "broker down", retriable=True))
    err = KafkaClientError.wrap(exc, context="cannot list topics")
    assert err.code == "_TRANSPORT"
    assert err.description == "cannot list topics: broker down"
    assert err.retriable


def test_wrap_any_other_exception():
    err = KafkaClientError.wrap(ValueError("bad value"))
    assert (err.code, err.description) == ("ValueError", "bad value")


def test_wrap_redacts_secrets():
    err = KafkaClientError.wrap(
        KafkaException(KafkaError(KafkaError._AUTHENTICATION, f"login with {SECRET} failed")), [SECRET]
    )
    assert SECRET not in str(err) and SECRET not in repr(err) and "***" in err.description


def test_redact_masks_longest_secret_first():
    assert redact("a=abcdef b=abc", ["abc", "abcdef"]) == "a=*** b=***"
    assert redact("nothing here", ["", "zzz"]) == "nothing here"


def test_config_repr_and_masked_config_hide_the_secret(sasl_cfg):
    assert SECRET not in repr(sasl_cfg) and SECRET not in sasl_cfg.model_dump_json()
    conf = client_config(sasl_cfg, "127.0.0.1:1", "producer")
    assert conf["sasl.password"] == SECRET
    shown = masked(conf)
    assert shown["sasl.password"] == "***"
    assert SECRET not in repr(shown)


def test_client_creation_error_does_not_echo_the_secret(sasl_cfg):
    # A password pasted where a key belongs: librdkafka names the unknown key in its error.
    with pytest.raises(KafkaClientError) as info:
        producer(sasl_cfg, "127.0.0.1:1", **{f"x.{SECRET}": 1})
    assert info.value.code == "_INVALID_ARG"
    assert "cannot create the kafka producer" in str(info.value)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


def test_error_callback_log_is_redacted(sasl_cfg, caplog):
    conf = client_config(sasl_cfg, "127.0.0.1:1", "consumer")
    with caplog.at_level(logging.WARNING, logger="watchtower.kafka.clients"):
        conf["error_cb"](KafkaError(KafkaError._AUTHENTICATION, f"SASL auth failed for svc/{SECRET}"))
    assert caplog.records and "SASL auth failed" in caplog.text
    assert SECRET not in caplog.text


def test_librdkafka_debug_logs_never_show_the_secret(sasl_cfg, caplog):
    """Even with debug=conf, which dumps every setting, the password stays out of the logs."""
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="watchtower.kafka.librdkafka"):
        p = producer(sasl_cfg, "127.0.0.1:1", debug="conf,security", **{"message.timeout.ms": 100})
        p.poll(0.3)  # librdkafka's log lines are delivered on poll
        p.flush(0.3)
    assert "sasl.username" in caplog.text  # the dump did happen
    assert SECRET not in caplog.text
    for record in caplog.records:
        assert SECRET not in repr(record.__dict__)


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("sasl.password", True),
        ("sasl.oauthbearer.client.secret", True),
        ("sasl.oauthbearer.client.private.key.password", True),  # newer librdkafka: not in the known list
        ("ssl.key.pem", True),
        ("ssl.keystore.password", True),
        ("some.plugin.secret", True),
        ("ssl.key.location", False),  # a path
        ("sasl.username", False),
        ("security.protocol", False),
        ("ssl.ca.location", False),
    ],
)
def test_masked_hides_keys_named_like_secrets_not_only_known_ones(key, secret):
    shown = masked({"bootstrap.servers": "b:9092", key: "v4lue-123"})
    assert (shown[key] == "***") is secret
    assert shown["bootstrap.servers"] == "b:9092"


def test_client_section_refuses_a_key_named_like_a_secret():
    from watchtower.config.models import KafkaConfig

    with pytest.raises(ValueError, match="kafka.secrets"):
        KafkaConfig(client={"sasl.oauthbearer.client.private.key.password": "x"})
