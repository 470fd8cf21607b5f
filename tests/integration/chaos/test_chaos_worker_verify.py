"""kill_worker's own read-back against a real Redis: exact counts pass, a lost or a double-counted event
is named."""

from __future__ import annotations

import pytest
import redis

from pipelines.workers.enricher import key_prefix
from watchtower.chaos.faults.base import FaultContext
from watchtower.chaos.faults.kill_worker import KillWorker, KillWorkerParams
from watchtower.config.models import PipelineConfig

pytestmark = [pytest.mark.integration]


def ctx(redis_url: str, group: str) -> FaultContext:
    return FaultContext(
        None,
        PipelineConfig(),
        lambda t: None,
        lambda t: None,
        lambda: 0,
        redis_url=redis_url,
        workers_group=group,
    )


@pytest.mark.parametrize(
    "counted,problem",
    [
        ({"a": 3, "b": 2}, None),
        ({"a": 3, "b": 1}, "user b counted 1 events, 2 were sent"),
        ({"a": 4, "b": 2}, "user a counted 4 events, 3 were sent"),
    ],
)
def test_verify(redis_url: str, counted: dict, problem: str | None) -> None:
    group = f"g-{len(counted)}-{sum(counted.values())}"
    r = redis.Redis.from_url(redis_url)
    for user, n in counted.items():
        r.hset(f"{key_prefix(group)}:user:{user}", "events", n)
    fault = KillWorker(KillWorkerParams(verify_within=1))
    fault.expected = {"a": 3, "b": 2}
    c = ctx(redis_url, group)
    got = fault.verify(c)
    assert got == ([] if problem is None else [f"worker state: {problem}"])
    assert c.notes[-1]["sent"] == 5
