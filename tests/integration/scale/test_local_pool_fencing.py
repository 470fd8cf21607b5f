"""The local pool actuator against a real Redis: the fenced write, the pool's side, its errors."""

from __future__ import annotations

import time

import pytest
import redis
from autoscale_support import wait_for

from watchtower.scale.base import ActuatorError, FencedActuator
from watchtower.scale.local_pool import LocalPoolActuator, PoolFollower, desired_key, pool_key

pytestmark = pytest.mark.integration


class Counted:
    """Stands in for WorkerPool (same `size` / `scale`), so this file runs without worker processes."""

    def __init__(self, size: int):
        self.size = size
        self.calls: list[int] = []

    def scale(self, count: int) -> None:
        self.calls.append(count)
        self.size = count


def test_a_deposed_leaders_write_is_refused(redis_client: redis.Redis):
    act = LocalPoolActuator("fence", redis_client)
    assert isinstance(act, FencedActuator)
    assert act.apply_fenced(3, token=7).ok
    stale = act.apply_fenced(1, token=6)  # the previous leader, still believing it leads
    assert not stale.ok and "older than the stored 7" in stale.error
    assert act.desired() == (3, 7)
    assert act.apply_fenced(4, token=7).ok and act.apply_fenced(2, token=8).ok
    assert act.desired() == (2, 8)
    assert not act.apply(5).ok  # unfenced writes count as token 0


def test_pool_follows_the_desired_count_and_publishes_its_size(redis_client: redis.Redis):
    pool = Counted(1)
    act = LocalPoolActuator("follow", redis_client)
    with pytest.raises(ActuatorError, match="--follow follow"):
        act.current()
    follower = PoolFollower("follow", pool, redis_client, interval=0.05, max_replicas=8).start()
    try:
        assert act.current() == 1
        act.apply_fenced(4, token=1)
        wait_for(lambda: act.current() == 4, 10, "the pool to follow to 4")
        act.apply_fenced(50, token=1)  # a bad count is clamped, never forks fifty workers
        wait_for(lambda: act.current() == 8, 10, "the pool to stop at max_replicas")
        assert pool.calls == [4, 8]
    finally:
        follower.stop()
    assert not redis_client.exists(pool_key("follow"))
    assert redis_client.exists(desired_key("follow"))


def test_a_pool_that_stopped_publishing_is_reported(redis_client: redis.Redis):
    redis_client.hset(pool_key("gone"), mapping={"size": 2, "at": time.time() - 60})
    with pytest.raises(ActuatorError, match="last reported 60s ago"):
        LocalPoolActuator("gone", redis_client, stale_after=10).current()
