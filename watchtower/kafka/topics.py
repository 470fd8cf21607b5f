"""Topic housekeeping: make sure the topics the pipeline needs exist with enough partitions."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from watchtower.kafka.clients import ADMIN_TIMEOUT, METADATA_TIMEOUT
from watchtower.kafka.errors import KafkaClientError

log = logging.getLogger(__name__)

CREATED = "created"
EXISTS = "exists"


def topic_partitions(admin: AdminClient, timeout: float = METADATA_TIMEOUT) -> dict[str, int]:
    """Every topic the cluster lists, with its partition count (internal `__` topics left out)."""
    try:
        md = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise KafkaClientError.wrap(exc, context="cannot read cluster metadata") from None
    return {
        name: len(t.partitions)
        for name, t in md.topics.items()
        if not name.startswith("__") and t.error is None
    }


def ensure_topics(
    admin: AdminClient,
    wanted: Mapping[str, int],
    replication_factor: int = -1,
    timeout: float = ADMIN_TIMEOUT,
) -> dict[str, str]:
    """Create the topics in `wanted` ({name: partitions}) that are missing; return {name: created|exists}.

    Idempotent: a topic that already exists with at least the wanted partitions is fine. One with fewer
    raises KafkaClientError(TOO_FEW_PARTITIONS) naming the fix; partitions are never added silently, since
    that moves keys between partitions. replication_factor -1 takes the broker's default.
    """
    existing = topic_partitions(admin, timeout=timeout)
    outcome: dict[str, str] = {}
    missing = [name for name in wanted if name not in existing]
    if missing:
        futures = admin.create_topics(
            [NewTopic(name, wanted[name], replication_factor) for name in missing],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        for name, fut in futures.items():
            try:
                fut.result(timeout=timeout)
                outcome[name] = CREATED
                log.info("created topic %s", name, extra={"partitions": wanted[name]})
            except KafkaException as exc:
                err = KafkaClientError.wrap(exc, context=f"cannot create topic {name}")
                if err.code != "TOPIC_ALREADY_EXISTS":  # someone else created it meanwhile
                    raise err from None
        existing = _listed(admin, wanted, timeout)
    for name, partitions in wanted.items():
        have = existing.get(name)
        if have is None:
            raise KafkaClientError(
                "UNKNOWN_TOPIC_OR_PART",
                f"topic {name} was created but the cluster metadata does not list it yet",
            )
        if have < partitions:
            raise KafkaClientError(
                "TOO_FEW_PARTITIONS",
                f"topic {name} has {have} partitions but {partitions} are configured: "
                f"add partitions (kafka-topics.sh --alter --topic {name} --partitions {partitions}), "
                f"delete the topic so it is recreated, or configure {have} partitions",
            )
        outcome.setdefault(name, EXISTS)
    return outcome


def _listed(admin: AdminClient, wanted: Mapping[str, int], timeout: float) -> dict[str, int]:
    """Metadata after a create: a real cluster may take a moment to list a new topic everywhere."""
    deadline = time.monotonic() + timeout
    while True:
        existing = topic_partitions(admin, timeout=timeout)
        if all(name in existing for name in wanted) or time.monotonic() > deadline:
            return existing
        time.sleep(0.1)
