"""Collector kinds: the one list the daemon config, `build_collectors`, the metric catalog and the demo read.

Each kind lives in its own module next to its config model, factory and specs (a `KIND`); adding a
collector is that module plus one line in `REGISTRY` below (docs/collectors.md shows a worked example).
The order of the list is the order collectors are built in and listed in docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from watchtower.collectors import (
    canary,
    chaos_faults,
    dlq,
    e2e_latency,
    flink,
    pipeline_outcomes,
    spark_progress,
)
from watchtower.collectors.base import BuildContext, Collector, CollectorKind
from watchtower.collectors.kafka_lag import collector as kafka_lag
from watchtower.core.types import MetricSpec


class _Sections(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CollectorKinds:
    """An ordered, immutable set of collector kinds; `with_kinds` gives an extended copy (tests, plugins)."""

    def __init__(self, kinds: Iterable[CollectorKind[Any]]):
        self._kinds: dict[str, CollectorKind[Any]] = {}
        for kind in kinds:
            if kind.name in self._kinds:
                raise ValueError(f"collector kind {kind.name!r} is registered twice")
            if not kind.name.isidentifier():
                raise ValueError(f"collector kind {kind.name!r}: use a Python identifier (it is a YAML key)")
            self._kinds[kind.name] = kind

    def __iter__(self) -> Iterator[CollectorKind[Any]]:
        return iter(self._kinds.values())

    def __getitem__(self, name: str) -> CollectorKind[Any]:
        return self._kinds[name]

    def names(self) -> list[str]:
        return list(self._kinds)

    def with_kinds(self, *kinds: CollectorKind[Any]) -> CollectorKinds:
        return CollectorKinds([*self, *kinds])

    def config_model(self) -> type[BaseModel]:
        """The `daemon.collectors:` section: one field per kind that has a config model, all defaulted."""
        fields: dict[str, Any] = {
            k.name: (k.config, Field(default_factory=k.config)) for k in self if k.config is not None
        }
        return create_model("CollectorsConfig", __base__=_Sections, __module__=__name__, **fields)

    def specs(self) -> Iterator[tuple[str, MetricSpec]]:
        for kind in self:
            for spec in kind.specs:
                yield kind.name, spec

    def build(self, sections: BaseModel, ctx: BuildContext) -> list[Collector]:
        """The collectors of every kind whose factory builds one; configuration only, no connections."""
        out = []
        for kind in self:
            section = getattr(sections, kind.name) if kind.config is not None else None
            collector = kind.build(section, ctx)
            if collector is not None:
                out.append(collector)
        return out

    def demo_sections(self, sections: BaseModel) -> BaseModel:
        """`sections` with each kind's demo settings applied (short intervals, the canary on)."""
        update: Mapping[str, Any] = {
            k.name: getattr(sections, k.name).model_copy(update=dict(k.demo))
            for k in self
            if k.config is not None and k.demo
        }
        return sections.model_copy(update=update)


REGISTRY = CollectorKinds(
    [
        kafka_lag.KIND,
        e2e_latency.KIND,
        spark_progress.KIND,
        pipeline_outcomes.KIND,
        canary.KIND,
        dlq.KIND,
        flink.KIND,
        chaos_faults.KIND,
    ]
)

CollectorsConfig = REGISTRY.config_model()
