"""Shared, low-level config sections and the YAML/env loader. The root config is watchtower.settings."""

from watchtower.config.loader import ConfigError, load_model
from watchtower.config.models import (
    GeneratorConfig,
    KafkaConfig,
    PipelineConfig,
    RedisConfig,
    StackConfig,
    WorkersConfig,
)

__all__ = [
    "ConfigError",
    "GeneratorConfig",
    "KafkaConfig",
    "PipelineConfig",
    "RedisConfig",
    "StackConfig",
    "WorkersConfig",
    "load_model",
]
