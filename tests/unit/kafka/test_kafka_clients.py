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


# ---- clients from settings already resolved (collectors, Spark tasks) ----------------------------------


def test_resolved_config_adds_the_role_id_callbacks_and_spells_overrides():
    from watchtower.kafka.clients import resolved_config

    base = {"bootstrap.servers": "b:1", "sasl.password": "hunter2"}
    conf = resolved_config(base, "lag", {"auto.offset.reset": "earliest"}, fetch_wait_max_ms=10)
    assert conf["client.id"] == "watchtower-lag"
    assert conf["auto.offset.reset"] == "earliest" and conf["fetch.wait.max.ms"] == 10
    assert callable(conf["error_cb"]) and conf["logger"].name == "watchtower.kafka.librdkafka"
    assert resolved_config({**base, "client.id": "mine"}, "lag")["client.id"] == "mine"
    assert base == {"bootstrap.servers": "b:1", "sasl.password": "hunter2"}  # the caller's dict untouched


def test_resolved_error_callback_redacts_the_secret(caplog):
    from confluent_kafka import KafkaError

    from watchtower.kafka.clients import resolved_config

    conf = resolved_config({"bootstrap.servers": "b:1", "sasl.password": "hunter2"}, "canary")
    with caplog.at_level("WARNING", logger="watchtower.kafka.clients"):
        conf["error_cb"](KafkaError(KafkaError._AUTHENTICATION, "bad password hunter2 for svc"))
    assert "hunter2" not in caplog.text and "kafka canary" in caplog.text


def test_assigned_consumer_never_commits_and_keeps_no_offset_reset_default():
    from watchtower.kafka.clients import ASSIGN_ONLY, assigned_consumer

    c = assigned_consumer({"bootstrap.servers": "127.0.0.1:1"}, "probe-group", "lag-probe")
    try:
        assert dict(ASSIGN_ONLY) == {"enable.auto.commit": False, "enable.auto.offset.store": False}
        assert c.assignment() == []  # an assign-only consumer: nothing joined, nothing assigned
    finally:
        c.close()


def test_admin_and_producer_from_a_consumers_settings_drop_the_group(caplog):
    from watchtower.kafka.clients import admin_from, producer_from, serve

    conf = {"bootstrap.servers": "127.0.0.1:1", "group.id": "g"}
    with caplog.at_level("WARNING"):
        admin, producer = admin_from(conf, "spark-source"), producer_from(conf, "spark-dlq", linger_ms=0)
        serve(admin, producer, None)  # delivers queued callbacks, tolerates an absent client
    assert "group.id" not in caplog.text  # librdkafka warns about a group.id on a non-consumer
    producer.flush(0)


def test_a_bad_setting_is_a_kafka_client_error_naming_it():
    from watchtower.kafka.clients import producer_from

    with pytest.raises(KafkaClientError) as info:
        producer_from({"bootstrap.servers": "b:1", "no.such.setting": 1}, "canary")
    assert "no.such.setting" in str(info.value)
