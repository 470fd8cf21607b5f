"""The composition root of the configuration: `WatchtowerConfig`, every subsystem's section in one model.

It sits above the subsystems so it can assemble their sections without a cycle: the shared low-level
sections come from `watchtower.config`, the `daemon:` and `alerting:` sections from `watchtower.daemon.config`
(built from the collector and notifier registries), `flink:` from `watchtower.config.flink`, `grafana:` from
`watchtower.config.grafana`. Nothing below the CLI and the demo imports this module; a subsystem takes the
sections it needs.

Durations accept `500ms`, `30s`, `10m`, `2h` or a number of seconds; they are stored as float seconds.
Environment overrides and file:line errors: see watchtower/config/loader.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from watchtower.config.chaos import ChaosConfig
from watchtower.config.flink import FlinkConfig
from watchtower.config.grafana import GrafanaConfig
from watchtower.config.ha import HAConfig
from watchtower.config.loader import load_model
from watchtower.config.models import (
    GeneratorConfig,
    KafkaConfig,
    PipelineConfig,
    RedisConfig,
    StackConfig,
    WorkersConfig,
)
from watchtower.daemon.config import AlertingConfig, DaemonConfig
from watchtower.scale.config import ScalingConfig


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WatchtowerConfig(_Model):
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    redis: RedisConfig = Field(default_factory=RedisConfig)
    stack: StackConfig = Field(default_factory=StackConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    generator: GeneratorConfig = Field(default_factory=GeneratorConfig)
    workers: WorkersConfig = Field(default_factory=WorkersConfig)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    ha: HAConfig = Field(default_factory=HAConfig)
    # Unset: no Flink collector. Set (even `flink: {}`): `watchtower run` watches that JobManager.
    flink: FlinkConfig | None = None
    chaos: ChaosConfig = Field(default_factory=ChaosConfig)  # `watchtower chaos` (docs/chaos.md)
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)  # docs/scaling.md
    grafana: GrafanaConfig = Field(default_factory=GrafanaConfig)  # `dashboards push` (docs/dashboards.md)
    log_level: str = "INFO"
    log_format: str = Field(default="console", pattern="^(console|json)$")


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> WatchtowerConfig:
    """Read `path` (optional), overlay the environment, validate. Raises ConfigError, never a traceback."""
    return load_model(WatchtowerConfig, path, env)
