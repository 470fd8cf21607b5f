"""The controller around the policy: leader gate, dry-run actuator, metrics in the history, the HTTP API."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from watchtower.core.history import History
from watchtower.core.types import Reading, Sample
from watchtower.exposition.http import HttpServer
from watchtower.exposition.prometheus import SnapshotCollector
from watchtower.scale.config import ScalingConfig
from watchtower.scale.controller import ScalingController
from watchtower.scale.dry_run import DryRunActuator
from watchtower.scale.metrics import COLLECTOR, SPECS


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


class NoLease:
    def holds(self) -> int | None:
        return None


def lag_reading(at: float, consumed: int, produced: int, stuck_p0: bool = False) -> Reading:
    s = []
    for p in range(4):
        end = produced + (500 if (stuck_p0 and p == 0) else 0)
        c = 3 if (stuck_p0 and p == 0) else consumed
        gl = (("group", "g"), ("partition", str(p)), ("topic", "t"))
        s += [
            Sample(
                "watchtower_topic_partition_high_watermark",
                (("partition", str(p)), ("topic", "t")),
                float(end),
            ),
            Sample("watchtower_consumer_committed_offset", gl, float(c)),
            Sample("watchtower_consumer_lag_messages", gl, float(end - c)),
        ]
    s.append(Sample("watchtower_consumer_group_state", (("group", "g"), ("state", "stable")), 1.0))
    s.append(Sample("watchtower_consumer_group_members", (("group", "g"),), 1.0))
    return Reading("kafka_lag", at, tuple(s))


CONFIG = ScalingConfig.model_validate(
    {
        "targets": {
            "w": {
                "group": "g",
                "topic": "t",
                "max_replicas": 8,
                "policy": {"window": 30, "stuck_after": 30, "busy_backlog": 100},
                "actuator": {"kind": "dry_run", "replicas": 1},
            }
        }
    }
)


def loaded_history(stuck: bool = False) -> History:
    h = History(50)
    # one replica commits 100/s per partition while 300/s per partition arrive: saturated, falling behind
    for t in range(0, 61, 10):
        h.append(lag_reading(1000 + t, consumed=100 * t, produced=300 * t + 1000, stuck_p0=stuck))
    return h


def test_leader_applies_through_the_actuator_and_the_decision_is_in_the_history():
    h = loaded_history()
    c = ScalingController(CONFIG, h, clock=Clock(1060))
    d = c.cycle("w")
    act = c.targets["w"].actuator
    assert isinstance(act, DryRunActuator) and d.changes
    assert (
        act.applied == [d.desired] and d.desired == 4
    )  # step of max 4 from 1 (need >> partitions: capped at 4)
    values = {(s.metric, s.labels): s.value for s in h.snapshot().readings[COLLECTOR].samples}
    assert values[("watchtower_scaling_desired_replicas", (("target", "w"),))] == 4
    assert values[("watchtower_scaling_partitions_capped", (("target", "w"),))] == 1
    assert values[("watchtower_scaling_actions_total", (("direction", "up"), ("target", "w")))] == 1
    assert values[("watchtower_scaling_leader", (("target", "w"),))] == 1
    status = c.status("w")
    assert status["desired"] == 4 and status["current"] == 4 and status["recent_actions"][0]["to"] == 4


def test_a_standby_decides_but_never_applies():
    c = ScalingController(CONFIG, loaded_history(), clock=Clock(1060), gate=NoLease())
    d = c.cycle("w")
    assert d.changes and c.targets["w"].actuator.applied == []
    assert c.status("w")["leader"] is False and c.status("w")["current"] == 1


def test_stuck_partition_is_reported_and_left_out():
    h = loaded_history(stuck=True)
    c = ScalingController(CONFIG, h, clock=Clock(1060))
    d = c.cycle("w")
    assert d.inputs["stuck_partitions"] == [0]
    values = {(s.metric, s.labels): s.value for s in h.snapshot().readings[COLLECTOR].samples}
    assert values[("watchtower_scaling_partition_stuck", (("partition", "0"), ("target", "w")))] == 1
    assert values[("watchtower_scaling_stuck_partitions", (("target", "w"),))] == 1


def test_http_api_and_metrics_exposition():
    h = loaded_history()
    c = ScalingController(CONFIG, h, clock=Clock(1060))
    c.cycle("w")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(h, {COLLECTOR: SPECS}, dict))
    text = generate_latest(registry).decode()
    assert 'watchtower_scaling_desired_replicas{target="w"} 4.0' in text
    assert 'watchtower_scaling_veto{kind="sink_backpressure",target="w"} 0.0' in text
    server = HttpServer(registry, lambda _: {}, port=0, scaling=c.status).start()
    try:
        one = orjson.loads(urllib.request.urlopen(f"{server.url}/api/v1/scaling/w", timeout=5).read())
        assert one["desired"] == 4 and one["target"] == "w" and one["mode"] == "capacity"
        every = orjson.loads(urllib.request.urlopen(f"{server.url}/api/v1/scaling", timeout=5).read())
        assert set(every["targets"]) == {"w"}
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{server.url}/api/v1/scaling/nope", timeout=5)
        assert err.value.code == 404
    finally:
        server.stop()


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="min_replicas"):
        ScalingConfig.model_validate(
            {"targets": {"w": {"group": "g", "topic": "t", "min_replicas": 5, "max_replicas": 2}}}
        )
    with pytest.raises(ValueError, match="dry_run"):
        ScalingConfig.model_validate(
            {"targets": {"w": {"group": "g", "topic": "t", "actuator": {"kind": "kubernetez"}}}}
        )


def test_the_daemon_serves_the_controller_and_runs_its_loop():
    from watchtower.daemon.config import DaemonConfig
    from watchtower.daemon.daemon import Daemon
    from watchtower.scale.controller import build_controller
    from watchtower.settings import WatchtowerConfig

    cfg = WatchtowerConfig.model_validate(
        {
            "scaling": CONFIG.model_dump()
            | {"targets": {"w": CONFIG.targets["w"].model_dump() | {"interval": 0.05}}}
        }
    )
    h = loaded_history()
    controller = build_controller(cfg, h, redis_url=None)
    controller.clock = Clock(1060)
    d = Daemon([], DaemonConfig.model_validate({"http": {"port": 0}}), history=h, scaling=controller).start()
    try:
        deadline = time.monotonic() + 5
        while (
            controller.status("w")["wanted"] is None and time.monotonic() < deadline
        ):  # the loop's first cycle
            time.sleep(0.05)
        text = urllib.request.urlopen(f"{d.http.url}/metrics", timeout=5).read().decode()
        assert 'watchtower_scaling_current_replicas{target="w"} 4.0' in text
        doc = orjson.loads(urllib.request.urlopen(f"{d.http.url}/api/v1/scaling/w", timeout=5).read())
        assert doc["desired"] == 4 and doc["actuator"] == "dry_run"
    finally:
        d.stop()
    assert not any(t.is_alive() for t in controller._threads)
