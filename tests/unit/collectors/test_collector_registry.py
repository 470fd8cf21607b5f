"""The collectors registry drives the daemon config, the metric catalog, the build and the demo.

A kind defined only in this test (config model, factory, specs) is registered with one call and shows up
in all four without any other file knowing about it; the real registry's kinds are checked the same way.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field, create_model

from watchtower.collectors.base import BuildContext, CollectorKind, CollectorSection
from watchtower.collectors.registry import REGISTRY, CollectorKinds, CollectorsConfig
from watchtower.config import ConfigError, KafkaConfig, load_model
from watchtower.core.types import Kind, MetricSpec, Reading, Sample, labels
from watchtower.daemon.config import DaemonConfig
from watchtower.daemon.daemon import build_collectors
from watchtower.exposition.catalog import all_specs, markdown
from watchtower.settings import load_config

KAFKA = KafkaConfig(bootstrap_servers="127.0.0.1:9092")


# ---- a collector kind that exists only here -------------------------------------------------------------


class QueueDepthConfig(CollectorSection):
    """Length of a Redis list."""

    queue: str = "jobs"
    max_items: int = Field(default=100, ge=1)


SPECS = (MetricSpec("watchtower_queue_depth", Kind.GAUGE, "Items waiting in the queue.", ("queue",)),)


class QueueDepthCollector:
    specs = SPECS

    def __init__(self, config: QueueDepthConfig, redis_url: str):
        self.name, self.interval, self.config, self.redis_url = (
            "queue_depth",
            config.interval,
            config,
            redis_url,
        )

    def collect(self, now: float) -> Reading:
        return Reading(
            "queue_depth", now, (Sample("watchtower_queue_depth", labels(queue=self.config.queue), 0.0),)
        )

    def close(self) -> None:
        pass


def build(config: QueueDepthConfig, ctx: BuildContext) -> QueueDepthCollector | None:
    return QueueDepthCollector(config, ctx.redis_url) if config.enabled and ctx.redis_url else None


KIND = CollectorKind("queue_depth", QueueDepthConfig, build, SPECS, demo={"interval": 1.0})
WITH_TEST_KIND = REGISTRY.with_kinds(KIND)


def root_model(registry: CollectorKinds) -> type[BaseModel]:
    """A config root with the real daemon section, its `collectors:` built from `registry`."""
    daemon = create_model(
        "Daemon",
        __base__=DaemonConfig,
        collectors=(registry.config_model(), Field(default_factory=registry.config_model())),
    )
    return create_model("Root", daemon=(daemon, Field(default_factory=daemon)))


# ---- config -------------------------------------------------------------------------------------------


def test_a_registered_kind_gets_its_config_section_with_defaults() -> None:
    sections = WITH_TEST_KIND.config_model()()
    assert sections.queue_depth == QueueDepthConfig()
    assert sections.kafka_lag == CollectorsConfig().kafka_lag  # the other kinds keep their defaults


def test_its_section_loads_from_yaml_and_the_environment(tmp_path: Path) -> None:
    f = tmp_path / "wt.yaml"
    f.write_text("daemon:\n  collectors:\n    queue_depth:\n      queue: orders-jobs\n")
    env = {"WATCHTOWER__DAEMON__COLLECTORS__QUEUE_DEPTH__INTERVAL": "2s"}
    cfg = load_model(root_model(WITH_TEST_KIND), f, env)
    assert cfg.daemon.collectors.queue_depth.queue == "orders-jobs"
    assert cfg.daemon.collectors.queue_depth.interval == 2.0


@pytest.mark.parametrize(
    ("yaml", "expected"),
    [
        (
            "      max_items: 0\n",
            "4: daemon.collectors.queue_depth.max_items: Input should be greater than or equal to 1",
        ),
        ("      maxitems: 5\n", "4: daemon.collectors.queue_depth.maxitems: unknown setting"),
    ],
)
def test_a_bad_value_in_its_section_names_file_line_and_field(
    tmp_path: Path, yaml: str, expected: str
) -> None:
    f = tmp_path / "wt.yaml"
    f.write_text("daemon:\n  collectors:\n    queue_depth:\n" + yaml)
    with pytest.raises(ConfigError) as info:
        load_model(root_model(WITH_TEST_KIND), f, {})
    assert any(p.startswith(f"{f}:{expected}") for p in info.value.problems), info.value.problems


def test_without_the_kind_its_section_is_an_unknown_setting(tmp_path: Path) -> None:
    f = tmp_path / "wt.yaml"
    f.write_text("daemon:\n  collectors:\n    queue_depth: {}\n")
    with pytest.raises(ConfigError, match="wt.yaml:3: daemon.collectors.queue_depth: unknown setting"):
        load_config(f, env={})


# ---- catalog, build, demo -------------------------------------------------------------------------------


def test_its_specs_are_in_the_catalog_and_the_metrics_doc() -> None:
    assert ("queue_depth", SPECS[0]) in list(all_specs(WITH_TEST_KIND))
    assert (
        "| `watchtower_queue_depth` | gauge | `queue` | queue_depth | Items waiting in the queue. |"
        in markdown(WITH_TEST_KIND)
    )
    assert "watchtower_queue_depth" not in markdown()


def test_build_collectors_runs_its_factory() -> None:
    daemon = (
        root_model(WITH_TEST_KIND)
        .model_validate({"daemon": {"collectors": {"queue_depth": {"queue": "q"}}}})
        .daemon
    )
    built = build_collectors(daemon, KAFKA, redis_url="redis://127.0.0.1:1/0", registry=WITH_TEST_KIND)
    assert [c.name for c in built] == [
        "kafka_lag",
        "e2e_latency",
        "spark_progress",
        "pipeline_outcomes",
        "dlq",
        "chaos",
        "queue_depth",
    ]
    assert built[-1].config.queue == "q" and built[-1].redis_url == "redis://127.0.0.1:1/0"
    # Its factory decides when it cannot run: no Redis, or disabled.
    assert "queue_depth" not in [c.name for c in build_collectors(daemon, KAFKA, registry=WITH_TEST_KIND)]
    off = (
        root_model(WITH_TEST_KIND)
        .model_validate({"daemon": {"collectors": {"queue_depth": {"enabled": False}}}})
        .daemon
    )
    assert "queue_depth" not in [
        c.name for c in build_collectors(off, KAFKA, redis_url="redis://x:1/0", registry=WITH_TEST_KIND)
    ]


def test_the_demo_applies_each_kinds_demo_settings() -> None:
    demo = WITH_TEST_KIND.demo_sections(WITH_TEST_KIND.config_model()())
    assert demo.queue_depth.interval == 1.0
    assert demo.canary.enabled and demo.canary.interval == 5.0
    assert {
        demo.kafka_lag.interval,
        demo.e2e_latency.interval,
        demo.spark_progress.interval,
        demo.dlq.interval,
    } == {2.0}


# ---- the registry itself ------------------------------------------------------------------------------


def test_a_kind_cannot_be_registered_twice_or_under_a_non_identifier() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        WITH_TEST_KIND.with_kinds(KIND)
    with pytest.raises(ValueError, match="identifier"):
        REGISTRY.with_kinds(CollectorKind("queue-depth", QueueDepthConfig, build, SPECS))


def test_the_real_registry_is_what_config_catalog_and_build_use() -> None:
    with_section = [k.name for k in REGISTRY if k.config is not None]
    assert list(DaemonConfig.model_fields["collectors"].annotation.model_fields) == with_section
    assert {source for source, _ in all_specs()} == {"daemon", "alerting", "scaling", "ha", *REGISTRY.names()}
    for kind in REGISTRY:
        assert kind.specs, kind.name
        for spec in kind.specs:
            assert ("daemon", spec) not in all_specs()


def test_env_override_of_a_real_kind_and_its_file_line_errors(tmp_path: Path) -> None:
    cfg = load_config(None, env={"WATCHTOWER__DAEMON__COLLECTORS__KAFKA_LAG__INTERVAL": "3s"})
    assert cfg.daemon.collectors.kafka_lag.interval == 3.0
    f = tmp_path / "wt.yaml"
    f.write_text("daemon:\n  collectors:\n    dlq:\n      rate_window: -1\n")
    with pytest.raises(ConfigError, match="wt.yaml:4: daemon.collectors.dlq.rate_window"):
        load_config(f, env={})
