"""The HA lease against a real redis-server: one holder, renewal, takeover after expiry, a hung Redis ends
leadership without I/O in `holds()`, and fenced writes refuse a deposed leader's token."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from watchtower.config.ha import HAConfig
from watchtower.daemon.leader import RedisLease, build_lease
from watchtower.scale.fencing import fenced_set
from watchtower.stack.redis_server import LocalRedis

pytestmark = pytest.mark.integration


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := check()) is not None and value is not False:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def prefix() -> str:
    return f"wt-lease-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    """A redis-server of this test's own, since the test stops it with SIGSTOP."""
    server = LocalRedis(workdir=tmp_path, die_with_parent=True).start()
    yield server
    if server.process is not None:
        os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


def lease(url: str, prefix: str, seconds: float, name: str) -> RedisLease:
    return build_lease(HAConfig(enabled=True, lease=seconds, redis_prefix=prefix, holder_id=name), url)


def test_one_holder_renews_past_its_lease_then_hands_over_on_release(redis_url: str, prefix: str) -> None:
    a, b = lease(redis_url, prefix, 1.0, "a"), lease(redis_url, prefix, 1.0, "b")
    a.start()
    token = wait_for(a.holds, 5, "a to lead")
    b.start()
    time.sleep(2.5)  # 2.5 leases: a renewed, b never got in
    assert a.holds() == token and b.holds() is None and a.losses == 0
    a.stop()  # releases: b leads at its next try, well within one lease
    released = time.monotonic()
    new = wait_for(b.holds, 1.0, "b to lead after the release")
    assert new == token + 1 and time.monotonic() - released < 1.0
    b.stop()


def test_a_leader_that_stops_renewing_is_replaced_within_the_lease(redis_url: str, prefix: str) -> None:
    a, b = lease(redis_url, prefix, 1.5, "a"), lease(redis_url, prefix, 1.5, "b")
    old = a.try_acquire() and a.holds()  # one acquisition, no keeper: as if killed right after
    acquired = time.monotonic()
    assert old
    b.start()
    new = wait_for(b.holds, 3.0, "b to take over")
    took = time.monotonic() - acquired
    assert new == old + 1 and 1.4 <= took <= 1.5 + 0.4, took
    assert a.holds() is None  # a's own clock ended its leadership before the key expired
    assert not a.renew() and a.losses == 1  # compare-and-extend refuses a's id
    b.stop()


def test_hung_redis_ends_leadership_without_blocking_holds(own_redis: LocalRedis, prefix: str) -> None:
    a = lease(own_redis.url, prefix, 1.5, "a").start()
    wait_for(a.holds, 5, "a to lead")
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    stopped = time.monotonic()
    calls = []
    while a.holds() is not None:
        t = time.monotonic()
        a.holds()
        calls.append(time.monotonic() - t)
        assert time.monotonic() - stopped < 1.5, "still leading a full lease after Redis hung"
        time.sleep(0.01)
    assert max(calls) < 0.01  # holds() never waited on Redis
    os.kill(own_redis.process.pid, signal.SIGCONT)
    wait_for(a.holds, 5, "a to lead again once Redis answers")
    a.stop()


def test_fenced_set_refuses_an_older_token(redis_url: str, prefix: str) -> None:
    r = redis.Redis.from_url(redis_url)
    key = f"{prefix}workers:desired"
    assert fenced_set(r, key, 3, 7)
    assert fenced_set(r, key, 4, 7)  # the same leader writes again
    assert not fenced_set(r, key, 9, 6)  # a deposed leader
    assert r.get(key) == b"4"
    assert fenced_set(r, key, 2, 8) and r.get(key) == b"2" and r.get(f"{key}:fence") == b"8"
    with pytest.raises(ValueError, match="positive"):
        fenced_set(r, key, 1, 0)
    r.close()
