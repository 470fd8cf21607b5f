"""Building client configs from KafkaConfig: precedence, key spelling, where the secret goes. No broker."""

import pytest

from watchtower.config import KafkaConfig
from watchtower.kafka import REFERENCE_PRODUCER, KafkaClientError, client_config
from watchtower.kafka.clients import CONSUMER_DEFAULTS, dotted

SASL = {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "svc"}


def test_reference_producer_settings():
    assert dict(REFERENCE_PRODUCER) == {
        "acks": "all",
        "enable.idempotence": True,
        "compression.type": "lz4",
        "linger.ms": 5,
        "batch.size": 65536,
    }


def test_producer_config_starts_from_the_reference_settings():
    conf = client_config(KafkaConfig(), "b:9092", "producer", REFERENCE_PRODUCER)
    assert conf["bootstrap.servers"] == "b:9092"
    assert {k: conf[k] for k in REFERENCE_PRODUCER} == dict(REFERENCE_PRODUCER)
    assert conf["client.id"] == "watchtower-producer"
    assert callable(conf["error_cb"]) and conf["logger"].name == "watchtower.kafka.librdkafka"


@pytest.mark.parametrize(
    "client, overrides, key, expected",
    [
        ({}, {}, "linger.ms", 5),  # reference default
        ({"linger.ms": 50}, {}, "linger.ms", 50),  # kafka.client beats the reference
        ({"linger.ms": 50}, {"linger.ms": 0}, "linger.ms", 0),  # caller's override beats both
        ({}, {"batch_num_messages": 1}, "batch.num.messages", 1),  # underscores stand for dots
        ({"client.id": "mine"}, {}, "client.id", "mine"),
        ({}, {"bootstrap.servers": "other:1"}, "bootstrap.servers", "other:1"),
    ],
)
def test_precedence(client, overrides, key, expected):
    conf = client_config(KafkaConfig(client=client), "b:9092", "producer", REFERENCE_PRODUCER, **overrides)
    assert conf[key] == expected


def test_bootstrap_argument_overrides_configured_servers():
    cfg = KafkaConfig(bootstrap_servers="configured:9092")
    assert client_config(cfg, None, "admin")["bootstrap.servers"] == "configured:9092"
    assert client_config(cfg, "embedded:1", "admin")["bootstrap.servers"] == "embedded:1"


def test_no_bootstrap_anywhere_is_a_clear_error():
    with pytest.raises(KafkaClientError) as info:
        client_config(KafkaConfig(), None, "admin")
    assert info.value.code == "NO_BOOTSTRAP_SERVERS"
    assert "watchtower stack up" in info.value.description


def test_sasl_and_tls_keys_pass_through_with_the_secret():
    cfg = KafkaConfig(client={**SASL, "ssl.ca.location": "/etc/ca.pem"}, sasl_password="hunter2")
    conf = client_config(cfg, "b:9093", "consumer", CONSUMER_DEFAULTS, **{"group.id": "g"})
    assert {k: conf[k] for k in SASL} == SASL
    assert conf["ssl.ca.location"] == "/etc/ca.pem"
    assert conf["sasl.password"] == "hunter2"
    assert conf["group.id"] == "g" and conf["auto.offset.reset"] == "earliest"


@pytest.mark.parametrize(
    "key, expected",
    [
        ("linger_ms", "linger.ms"),
        ("linger.ms", "linger.ms"),
        ("error_cb", "error_cb"),
        ("stats_cb", "stats_cb"),
        ("on_delivery", "on_delivery"),
        ("logger", "logger"),
        ("acks", "acks"),
    ],
)
def test_dotted(key, expected):
    assert dotted(key) == expected
