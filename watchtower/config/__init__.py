from watchtower.config.loader import ConfigError, load_config
from watchtower.config.models import (
    GeneratorConfig,
    KafkaConfig,
    PipelineConfig,
    RedisConfig,
    StackConfig,
    WatchtowerConfig,
    WorkersConfig,
)

__all__ = [
    "ConfigError",
    "GeneratorConfig",
    "KafkaConfig",
    "PipelineConfig",
    "RedisConfig",
    "StackConfig",
    "WatchtowerConfig",
    "WorkersConfig",
    "load_config",
]
