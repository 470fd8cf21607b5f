"""The Kafka client layer: typed factories over confluent-kafka, one error type, topic housekeeping."""

from watchtower.kafka.clients import REFERENCE_PRODUCER, admin, client_config, consumer, producer
from watchtower.kafka.errors import KafkaClientError, masked, redact
from watchtower.kafka.topics import ensure_topics, topic_partitions

__all__ = [
    "REFERENCE_PRODUCER",
    "KafkaClientError",
    "admin",
    "client_config",
    "consumer",
    "ensure_topics",
    "masked",
    "producer",
    "redact",
    "topic_partitions",
]
