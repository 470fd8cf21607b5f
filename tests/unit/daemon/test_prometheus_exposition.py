"""The custom collector: fresh families per scrape, vanished series vanish, parseable output."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from scripted import ScriptedCollector

from watchtower.core.history import History
from watchtower.daemon.runner import CollectorRunner
from watchtower.exposition.prometheus import SnapshotCollector


def scrape(registry: CollectorRegistry) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def setup() -> tuple[ScriptedCollector, CollectorRunner, CollectorRegistry]:
    c = ScriptedCollector("c")
    runner = CollectorRunner([c], History(5), clock=lambda: 10.0)
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(runner.history, {"c": c.specs}, runner.health))
    return c, runner, registry


def test_vanished_partition_vanishes_from_the_next_scrape() -> None:
    c, runner, registry = setup()
    runner.run_once("c")
    assert set(scrape(registry)["test_value"]) == {(("partition", "0"),), (("partition", "1"),)}
    c.partitions = [0]
    runner.run_once("c")
    m = scrape(registry)
    assert set(m["test_value"]) == {(("partition", "0"),)}
    assert m["test_events_total"] == {(): 2.0}
    assert m["watchtower_collector_up"] == {(("collector", "c"),): 1.0}
    assert m["watchtower_collector_duration_seconds_count"] == {(("collector", "c"),): 2.0}


def test_a_down_collector_exposes_up_zero_and_no_stale_values() -> None:
    c, runner, registry = setup()
    runner.run_once("c")
    c.fail_with = OSError("down")
    runner.run_once("c")
    m = scrape(registry)
    assert "test_value" not in m
    assert m["watchtower_collector_up"] == {(("collector", "c"),): 0.0}
    assert m["watchtower_collector_errors_total"] == {(("collector", "c"),): 1.0}


def test_a_family_two_collectors_report_is_exposed_once_with_both_series() -> None:
    """Spark's and Flink's collectors both report watchtower_checkpoint_duration_seconds; the text format
    allows one HELP/TYPE block per name, so the two must merge."""
    a, b = ScriptedCollector("a"), ScriptedCollector("b")
    b.partitions = [7]
    runner = CollectorRunner([a, b], History(5), clock=lambda: 10.0)
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(runner.history, {"a": a.specs, "b": b.specs}, runner.health))
    runner.run_once("a")
    runner.run_once("b")
    text = generate_latest(registry).decode()
    assert text.count("# TYPE test_value gauge") == 1 and text.count("# HELP test_value ") == 1
    assert set(scrape(registry)["test_value"]) == {
        (("partition", "0"),),
        (("partition", "1"),),
        (("partition", "7"),),
    }


def test_the_interval_in_use_is_exposed_and_follows_the_policy() -> None:
    from watchtower.collectors.interval_policy import IntervalPolicyConfig

    c, runner, registry = setup()
    assert scrape(registry)["watchtower_collector_interval_seconds"] == {(("collector", "c"),): 0.05}
    adaptive = ScriptedCollector("a", interval=4.0)
    adaptive.interval_policy = IntervalPolicyConfig(enabled=True, min_interval=0.25, max_interval=8.0)  # type: ignore[attr-defined]
    runner = CollectorRunner([adaptive], History(5), clock=lambda: 10.0)
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(runner.history, {"a": adaptive.specs}, runner.health))
    assert scrape(registry)["watchtower_collector_interval_seconds"] == {(("collector", "a"),): 4.0}
    runner.run_once("a")  # a cycle costing microseconds: the floor
    assert scrape(registry)["watchtower_collector_interval_seconds"] == {(("collector", "a"),): 0.25}
