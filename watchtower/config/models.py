"""The shared, low-level config sections: Kafka, Redis, the embedded stack, the pipeline, the generator and
the workers. The root `WatchtowerConfig` that assembles every subsystem's section is in watchtower/settings.py.

Durations accept `500ms`, `30s`, `10m`, `2h` or a number of seconds; they are stored as float seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from watchtower.contract import PROGRESS_STREAM
from watchtower.core.units import Duration, Size

# librdkafka keys whose values are secrets: kept as SecretStr, never logged.
SECRET_KAFKA_KEYS = frozenset(
    {
        "sasl.password",
        "ssl.key.password",
        "ssl.key.pem",
        "ssl.keystore.password",
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.config",
    }
)
# librdkafka keys that are secret by their name, whatever their exact spelling (a newer librdkafka's
# sasl.oauthbearer.client.private.key.password, a plugin's *.secret, ssl.key.pem...): masked as well.
_SECRET_KEY_PARTS = ("password", "secret", "private.key", "key.pem", "sasl.oauthbearer.config", "jaas")


def is_secret_key(key: str) -> bool:
    """True for a librdkafka key whose value must never be shown: the known ones and any key named like one."""
    k = key.lower()
    return k in SECRET_KAFKA_KEYS or any(part in k for part in _SECRET_KEY_PARTS)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaConfig(_Model):
    """Where the pipeline's Kafka lives. Leave `bootstrap_servers` empty to use the embedded broker."""

    bootstrap_servers: str | None = None
    # Any librdkafka setting, passed through as is (security.protocol, sasl.mechanism, ssl.ca.location...).
    client: dict[str, str | int | float | bool] = Field(default_factory=dict)
    sasl_password: SecretStr | None = None
    # Secret librdkafka keys (ssl.key.password, sasl.oauthbearer.client.secret...): masked everywhere.
    secrets: dict[str, SecretStr] = Field(default_factory=dict)

    @field_validator("client")
    @classmethod
    def _no_plain_secrets(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in v:
            if is_secret_key(key):
                raise ValueError(
                    f"{key} must not sit in kafka.client where it could be logged: "
                    f"move it to kafka.secrets ({key}: ...), or use kafka.sasl_password / WATCHTOWER__KAFKA__SASL_PASSWORD"
                )
        return v

    def librdkafka(self, bootstrap_servers: str | None = None, **overrides: Any) -> dict[str, Any]:
        """The dotted librdkafka settings for a client; `bootstrap_servers` overrides the configured one."""
        servers = bootstrap_servers or self.bootstrap_servers
        if not servers:
            raise ValueError(
                "kafka.bootstrap_servers is not set and no embedded broker is running: run `watchtower stack up`"
            )
        conf: dict[str, Any] = {"bootstrap.servers": servers, **self.client}
        conf.update({k: v.get_secret_value() for k, v in self.secrets.items()})
        if self.sasl_password is not None:
            conf["sasl.password"] = self.sasl_password.get_secret_value()
        conf.update(overrides)
        return conf


class RedisConfig(_Model):
    """The serving layer. Empty url: REDIS_URL from the environment, else a redis-server the stack starts."""

    url: SecretStr | None = None  # may carry a password
    start_if_missing: bool = True


class StackConfig(_Model):
    """The embedded stack started by `watchtower stack up` and `watchtower demo`."""

    state_dir: Path = Path(".watchtower")
    broker_port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port")
    redis_port: int = Field(default=0, ge=0, le=65535)


class PipelineConfig(_Model):
    topic: str = "orders"
    partitions: int = Field(default=6, ge=1)
    dlq_topic: str = "orders.dlq"
    data_dir: Path = Path(".watchtower/data")
    consumer_group: str = "watchtower-spark"
    max_offsets_per_trigger: int = Field(default=200_000, ge=1)
    trigger_interval: Duration = 0.5
    watermark_delay: Duration = 600.0
    # A valid event stamped further ahead of its produce time goes to the DLQ (`future_event_time`) and
    # never moves the watermark.
    max_future_skew: Duration = Field(default=300.0, gt=0)
    window_length: Duration = 300.0
    window_slide: Duration = 60.0
    redis_ttl: Duration = 900.0
    max_event_bytes: Size = 64 * 1024
    progress_stream: str = PROGRESS_STREAM
    shuffle_partitions: int = Field(default=2, ge=1)

    @field_validator("window_slide")
    @classmethod
    def _slide_positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("window_slide must be above zero, for example 1m")
        return v

    @model_validator(mode="after")
    def _skew_below_delay(self) -> PipelineConfig:
        if self.max_future_skew >= self.watermark_delay:
            raise ValueError(
                f"max_future_skew ({self.max_future_skew:g}s) must be below watermark_delay ({self.watermark_delay:g}s): "
                "an event admitted that far ahead would move the watermark past the clock and make on-time events late"
            )
        return self


class GeneratorConfig(_Model):
    rate: float = Field(default=2000.0, gt=0, description="events per second")
    users: int = Field(default=10_000, ge=1)
    duplicate_ratio: float = Field(default=0.0, ge=0, le=1)
    malformed_ratio: float = Field(default=0.0, ge=0, le=1)
    late_ratio: float = Field(default=0.0, ge=0, le=1)
    late_by: Duration = 3600.0


class WorkersConfig(_Model):
    count: int = Field(default=2, ge=0)
    group: str = "watchtower-enricher"
    max_poll_interval: Duration = 30.0
    session_timeout: Duration = 10.0
