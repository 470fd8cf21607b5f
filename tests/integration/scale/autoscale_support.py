"""An embedded autoscaling stack for tests and the bench: real workers, the lag collector, the controller."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis

from pipelines.produce import Generator
from pipelines.workers.enricher import WorkerSettings
from pipelines.workers.pool import WorkerPool
from watchtower.collectors.kafka_lag.collector import KafkaLagCollector
from watchtower.collectors.kafka_lag.config import KafkaLagConfig
from watchtower.config.models import GeneratorConfig, WorkersConfig
from watchtower.core.history import History
from watchtower.daemon.config import DaemonConfig
from watchtower.daemon.daemon import Daemon
from watchtower.scale.config import ScalingConfig
from watchtower.scale.controller import ScalingController
from watchtower.scale.local_pool import PoolFollower, desired_key, pool_key

TARGET = "enricher"
FAST_WORKERS = WorkersConfig(count=1, session_timeout=6.0, max_poll_interval=15.0)


def wait_for(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 0.2,
    on_timeout: Callable[[], Any] | None = None,
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(interval)
    detail = f": {on_timeout()}" if on_timeout is not None else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")


@dataclass
class Stack:
    daemon: Daemon
    controller: ScalingController
    pool: WorkerPool
    follower: PoolFollower
    samples: list[tuple[float, int, int, float | None]] = field(
        default_factory=list
    )  # (t, replicas, lag, lag s)

    def status(self) -> dict[str, Any]:
        return self.controller.status(TARGET)


def scaling_config(group: str, topic: str, redis_url: str, **target: Any) -> ScalingConfig:
    base = {
        "group": group,
        "topic": topic,
        "interval": 1.0,
        "min_replicas": 1,
        "max_replicas": 6,
        "actuator": {"kind": "local_pool", "redis_url": redis_url},
    }
    return ScalingConfig.model_validate({"targets": {TARGET: {**base, **target}}})


@contextmanager
def autoscaled(
    bootstrap: str,
    redis_url: str,
    topic: str,
    group: str,
    scaling: ScalingConfig,
    *,
    workers: int = 1,
    max_rate: float = 300.0,
    worker_cfg: WorkersConfig = FAST_WORKERS,
    stall_after: float = 60.0,
) -> Iterator[Stack]:
    settings = WorkerSettings(
        bootstrap=bootstrap,
        redis_url=redis_url,
        topic=topic,
        group=group,
        workers=worker_cfg,
        max_rate=max_rate,
    )
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    # The target's keys are per target name on the shared Redis: a count (and fencing token) left by the
    # previous test would be followed at once (a stuck-partition test once lost a worker to desired=1).
    client.delete(desired_key(TARGET), pool_key(TARGET))
    pool = WorkerPool(settings).start(workers)
    follower = PoolFollower(TARGET, pool, client, interval=0.3).start()
    lag = KafkaLagConfig(
        interval=1.0,
        timeout=2.0,
        groups_allow=[group],
        rate_window=5.0,
        stall_after=stall_after,
        lag_seconds_method="interpolation",
    )
    history = History(900)
    controller = ScalingController(scaling, history, redis_url=redis_url)
    daemon = Daemon(
        [KafkaLagCollector(lag, {"bootstrap.servers": bootstrap})],
        DaemonConfig.model_validate({"http": {"port": 0}}),
        history=history,
        scaling=controller,
    )
    daemon.start()
    stack = Stack(daemon, controller, pool, follower)
    try:
        yield stack
    finally:
        daemon.stop()
        follower.stop()
        pool.stop()


def run_load(
    bootstrap: str,
    topic: str,
    phases: Sequence[tuple[float, float]],
    stop: threading.Event | None = None,
    users: int = 3000,
) -> Any:
    """Produce at each (rate, seconds) in turn; one set of markers at the end. Returns the manifest."""
    gen = Generator(GeneratorConfig(rate=phases[0][0], users=users), bootstrap, topic=topic)
    for rate, seconds in phases:
        gen.config = gen.config.model_copy(update={"rate": rate})
        gen.run(duration=seconds, finish=False, stop_event=stop)
        if stop is not None and stop.is_set():
            break
    return gen.finish()


def group_lag(stack: Stack, group: str, topic: str) -> tuple[int, float | None]:
    snap = stack.daemon.history.snapshot()
    return (
        int(
            snap.value(
                "kafka_lag", "watchtower_consumer_group_lag_messages", (("group", group), ("topic", topic))
            )
            or 0
        ),
        snap.value(
            "kafka_lag", "watchtower_consumer_group_max_lag_seconds", (("group", group), ("topic", topic))
        ),
    )
