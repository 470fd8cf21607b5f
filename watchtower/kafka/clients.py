"""Factories for confluent-kafka clients built from `KafkaConfig`: the one place client settings are decided.

Precedence, lowest first: watchtower's defaults for the role (for producers the reference settings below),
then `kafka.client` from the config (any librdkafka key, including SASL/TLS), then the caller's overrides.
Overrides are librdkafka keys; as keyword arguments, underscores stand for dots (`linger_ms=0` is
`linger.ms`), except for the Python-level keys (`error_cb`, `logger`, `on_delivery`...).

Every client logs librdkafka's messages through `watchtower.kafka.librdkafka` (served on poll) and
reports errors through `error_cb`, both with secrets removed. Creating a client does no network I/O
that can fail; connection problems surface later through `error_cb` and operation results.

Two ways in: from `KafkaConfig` (`admin`, `producer`, `consumer`), or from librdkafka settings already
resolved (`*_from(conf, role, ...)`: collectors get them from the daemon's build context, Spark tasks
from a pickled dict). Every confluent-kafka client in watchtower/ and pipelines/ is created here (a unit
test checks). A client that never polls for messages (admin, ListOffsets- or commit-only consumers) is
passed to `serve` after use, so the logs and errors queued for it are delivered and do not pile up.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from watchtower.config import KafkaConfig
from watchtower.kafka.errors import KafkaClientError, masked, redact, secret_values

log = logging.getLogger(__name__)
librdkafka_log = logging.getLogger("watchtower.kafka.librdkafka")
# librdkafka reports every broker disconnect at INFO; below WARNING it drowns the daemon's own lines.
if librdkafka_log.level == logging.NOTSET:
    librdkafka_log.setLevel(logging.WARNING)

# How the reference pipeline produces: no loss or duplicates on retry, cheap compression, small batches.
REFERENCE_PRODUCER: Mapping[str, Any] = MappingProxyType(
    {
        "acks": "all",
        "enable.idempotence": True,
        "compression.type": "lz4",
        "linger.ms": 5,
        "batch.size": 65536,
    }
)
CONSUMER_DEFAULTS: Mapping[str, Any] = MappingProxyType({"auto.offset.reset": "earliest"})

# The one place client-side timeouts are chosen (seconds).
METADATA_TIMEOUT = 10.0
ADMIN_TIMEOUT = 15.0

_PYTHON_KEYS = frozenset(
    {"logger", "on_delivery", "on_commit", "error_cb", "throttle_cb", "stats_cb", "oauth_cb"}
)


def dotted(key: str) -> str:
    """`linger_ms` -> `linger.ms`; dotted keys and Python-level keys are kept as written."""
    if "." in key or key in _PYTHON_KEYS or key.endswith("_cb"):
        return key
    return key.replace("_", ".")


def client_config(
    cfg: KafkaConfig,
    bootstrap: str | None,
    role: str,
    defaults: Mapping[str, Any] = MappingProxyType({}),
    **overrides: Any,
) -> dict[str, Any]:
    """The complete librdkafka config for one client. Pure: no client is created."""
    try:
        conf = cfg.librdkafka(bootstrap, **{dotted(k): v for k, v in overrides.items()})
    except ValueError as exc:
        raise KafkaClientError("NO_BOOTSTRAP_SERVERS", str(exc)) from None
    merged: dict[str, Any] = {"client.id": f"watchtower-{role}", **defaults, **conf}
    secrets = secret_values(merged)
    merged.setdefault("error_cb", _error_logger(role, secrets))
    merged.setdefault("logger", librdkafka_log)
    return merged


def admin(cfg: KafkaConfig, bootstrap: str | None = None, **overrides: Any) -> AdminClient:
    return _create(AdminClient, client_config(cfg, bootstrap, "admin", **overrides), "admin")


def producer(cfg: KafkaConfig, bootstrap: str | None = None, **overrides: Any) -> Producer:
    """A producer with the reference settings (acks=all, idempotent, lz4, linger 5 ms, 64 KiB batches)."""
    return _create(
        Producer, client_config(cfg, bootstrap, "producer", REFERENCE_PRODUCER, **overrides), "producer"
    )


def consumer(cfg: KafkaConfig, bootstrap: str | None, group: str, **overrides: Any) -> Consumer:
    conf = client_config(cfg, bootstrap, "consumer", CONSUMER_DEFAULTS, **{"group.id": group, **overrides})
    return _create(Consumer, conf, "consumer")


def resolved_config(
    conf: Mapping[str, Any], role: str, defaults: Mapping[str, Any] = MappingProxyType({}), **overrides: Any
) -> dict[str, Any]:
    """`client_config` for settings already resolved to librdkafka keys (bootstrap.servers included)."""
    merged: dict[str, Any] = {
        "client.id": f"watchtower-{role}",
        **defaults,
        **conf,
        **{dotted(k): v for k, v in overrides.items()},
    }
    merged.setdefault("error_cb", _error_logger(role, secret_values(merged)))
    merged.setdefault("logger", librdkafka_log)
    return merged


def admin_from(conf: Mapping[str, Any], role: str = "admin", **overrides: Any) -> AdminClient:
    return _create(AdminClient, resolved_config(_without_group(conf), role, **overrides), role)


def producer_from(conf: Mapping[str, Any], role: str = "producer", **overrides: Any) -> Producer:
    """A producer with librdkafka's defaults plus `overrides` (not the reference settings of `producer`)."""
    return _create(Producer, resolved_config(_without_group(conf), role, **overrides), role)


def consumer_from(conf: Mapping[str, Any], group: str, role: str = "consumer", **overrides: Any) -> Consumer:
    conf = resolved_config(conf, role, CONSUMER_DEFAULTS, **{"group.id": group, **overrides})
    return _create(Consumer, conf, role)


ASSIGN_ONLY: Mapping[str, Any] = MappingProxyType(
    {"enable.auto.commit": False, "enable.auto.offset.store": False}
)


def assigned_consumer(conf: Mapping[str, Any], group: str, role: str, **overrides: Any) -> Consumer:
    """A consumer that is only ever `assign`ed partitions (or asked for offsets): it never joins `group`
    (librdkafka needs a group.id all the same) and never commits. No auto.offset.reset default: the
    caller says what an out-of-range offset means for it."""
    conf = resolved_config(conf, role, ASSIGN_ONLY, **{"group.id": group, **overrides})
    return _create(Consumer, conf, role)


def serve(*clients: Any) -> None:
    """Deliver the queued log lines and error callbacks of clients that never poll for messages."""
    for c in clients:
        if c is not None:
            try:
                c.poll(0)
            except (KafkaException, RuntimeError):  # a closed client has nothing left to serve
                pass


def _without_group(conf: Mapping[str, Any]) -> dict[str, Any]:
    # A consumer's settings re-used for an admin or producer: group.id would only draw a warning.
    return {k: v for k, v in conf.items() if k != "group.id"}


def _create(kind: type, conf: dict[str, Any], role: str) -> Any:
    log.debug("creating kafka %s", role, extra={"config": masked(conf)})
    try:
        return kind(conf)
    except (KafkaException, ValueError, TypeError) as exc:
        raise KafkaClientError.wrap(
            exc, secret_values(conf), context=f"cannot create the kafka {role}"
        ) from None


def _error_logger(role: str, secrets: list[str]):
    def on_error(err: KafkaError) -> None:
        level = logging.ERROR if err.fatal() else logging.WARNING
        log.log(level, "kafka %s: %s", role, redact(err.str(), secrets), extra={"code": err.name()})

    on_error.__name__ = f"{role}_error_cb"
    return on_error
