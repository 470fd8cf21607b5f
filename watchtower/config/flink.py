"""The `flink:` config section: where the Flink JobManager answers, and how the reference job runs.

Kept in its own file so the Flink pieces stay together; `WatchtowerConfig` gains a `flink: FlinkConfig`
field when it is wired in.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from watchtower.core.units import Duration


class FlinkConfig(BaseModel):
    """A Flink cluster watched through its JobManager REST API, and the reference job's settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rest_url: str = "http://127.0.0.1:8081"
    # The reference job submits under this name; the collector watches it (and any other `jobs`).
    job_name: str = "watchtower-flink-reference"
    # Extra job names to watch. A watched job that is absent reports watchtower_job_up 0.
    jobs: tuple[str, ...] = ()
    # The flink-sql-connector-kafka jar. Unset: the reference job reads its built-in generated source.
    kafka_jar: Path | None = None
    checkpoint_interval: Duration = 2.0
    collect_interval: Duration = 5.0
    request_timeout: Duration = Field(default=2.0, gt=0)

    @field_validator("rest_url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"{v!r} is not an http(s) URL: write it as http://host:8081")
        return v.rstrip("/")

    @field_validator("kafka_jar")
    @classmethod
    def _jar_exists(cls, v: Path | None) -> Path | None:
        if v is not None and not v.is_file():
            raise ValueError(
                f"{v} does not exist: point it at the flink-sql-connector-kafka jar, or remove it"
            )
        return v

    @field_validator("checkpoint_interval")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v < 0.1:
            raise ValueError("checkpoint_interval must be at least 100ms, for example 2s")
        return v

    def watched(self) -> tuple[str, ...]:
        """Job names that must be present; their absence is reported as down."""
        return tuple(dict.fromkeys((self.job_name, *self.jobs)))
