"""The collector seam: what a collector is, what configures it, and how a collector kind is registered.

The data a collector returns lives in `watchtower.core.types`. A collector kind (`CollectorKind`) names
its `daemon.collectors.<name>` config model, its factory and its metric specs; `registry.py` lists the
kinds, and the daemon config, `build_collectors`, the metric catalog and the demo read that list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from watchtower.config.flink import FlinkConfig
from watchtower.config.models import KafkaConfig, PipelineConfig
from watchtower.core.types import MetricSpec, Reading
from watchtower.core.units import Duration


@runtime_checkable
class Collector(Protocol):
    """One source of measurements.

    `specs` lists every metric family the collector may emit (for docs and exposition).
    `collect(now)` does I/O and may block up to the collector's own timeouts; it may raise, and the
    scheduler then marks the collector down, logs the change once and keeps the others running.
    `close()` releases clients; it must not raise.
    """

    name: str
    interval: float
    specs: tuple[MetricSpec, ...]

    def collect(self, now: float) -> Reading: ...

    def close(self) -> None: ...


class CollectorSection(BaseModel):
    """The settings every `daemon.collectors.<name>` section has; a kind's config model extends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    interval: Duration = Field(default=10.0, gt=0)
    timeout: Duration = Field(default=5.0, gt=0, description="budget for each network call of one cycle")


@dataclass(frozen=True)
class BuildContext:
    """What a factory may need besides its own section: where Kafka, Redis, the pipeline and Flink are."""

    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    bootstrap_servers: str | None = None  # overrides kafka.bootstrap_servers (the embedded broker's)
    redis_url: str | None = None  # None: the collectors that read the pipeline's Redis are not built
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    flink: FlinkConfig | None = None  # None: no `flink:` section, no Flink collector

    def librdkafka(self) -> dict[str, Any]:
        """The librdkafka settings of the configured cluster (secrets included: never log them)."""
        return self.kafka.librdkafka(self.bootstrap_servers)


C = TypeVar("C", bound=BaseModel)


@dataclass(frozen=True)
class CollectorKind(Generic[C]):
    """One kind of collector, as the registry knows it.

    `config` is the model of its `daemon.collectors.<name>` section, or None when the kind has no section
    there (Flink is configured by the top-level `flink:` section). `build(section, ctx)` makes the
    collector without any network I/O, or returns None when it cannot or should not run (disabled, no
    Redis); it raises only for bad configuration. `demo` are the section's settings under `watchtower demo`.
    """

    name: str
    config: type[C] | None
    build: Callable[[C | None, BuildContext], Collector | None]
    specs: tuple[MetricSpec, ...]
    demo: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
