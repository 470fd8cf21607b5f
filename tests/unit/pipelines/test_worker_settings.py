"""Worker settings cross the process boundary (as JSON in the environment) with every secret intact."""

import orjson
import pytest

from pipelines.workers.enricher import WorkerSettings
from pipelines.workers.pool import settings_from_json, settings_to_json
from watchtower.config.models import KafkaConfig, WorkersConfig

OIDC = {"sasl.oauthbearer.client.secret": "oidc-s3cret", "ssl.key.password": "key-s3cret"}


@pytest.mark.parametrize(
    ("kafka", "revealed"),
    [
        (KafkaConfig(), {}),
        (KafkaConfig(sasl_password="hunter2"), {"sasl.password": "hunter2"}),
        (KafkaConfig(secrets=OIDC), OIDC),
        (
            KafkaConfig(
                bootstrap_servers="k:9093",
                client={
                    "security.protocol": "SASL_SSL",
                    "sasl.mechanism": "PLAIN",
                    "socket.timeout.ms": 5000,
                },
                sasl_password="hunter2",
                secrets={"ssl.key.password": "key-s3cret"},
            ),
            {"sasl.password": "hunter2", "ssl.key.password": "key-s3cret"},
        ),
    ],
)
def test_settings_round_trip_with_every_secret(kafka, revealed):
    s = WorkerSettings(
        bootstrap="b:9092",
        redis_url="redis://:pw@h/0",
        kafka=kafka,
        workers=WorkersConfig(session_timeout="6s"),
    )
    back = settings_from_json(settings_to_json(s))
    assert back == s
    conf = back.kafka.librdkafka(back.bootstrap)
    for key, value in revealed.items():
        assert conf[key] == value
    assert "*****" not in settings_to_json(s)
    # Back in the worker the secrets are SecretStr again: masked in reprs and dumps.
    for value in revealed.values():
        assert value not in repr(back) and value not in back.kafka.model_dump_json()


def test_the_json_is_plain_data():
    s = WorkerSettings(bootstrap="b", redis_url="r", kafka=KafkaConfig(secrets={"ssl.key.password": "x"}))
    doc = orjson.loads(settings_to_json(s))
    assert doc["kafka"]["secrets"] == {"ssl.key.password": "x"}
    assert doc["workers"]["max_poll_interval"] == 30.0
