"""The local worker pool as a scaling target: the daemon writes a desired count to Redis, the pool follows.

Two keys per target, `wt:scale:<target>:desired` (hash: replicas, token, at; written by the leader's
controller) and `wt:scale:<target>:pool` (hash: size, at, pid; written by the pool):

    daemon (leader, token T) --EVAL fence--> desired{replicas, token=T}
    watchtower pipeline workers --follow <target>:  reads desired, scales, publishes pool{size}

The write is a Lua compare: a token lower than the one stored is refused, so a deposed leader that
still believes it leads cannot undo its successor's decision. `current()` is the size the pool last
published; a pool that has not published within `stale_after` is reported as unreachable.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Literal, Protocol

import redis
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from watchtower.core.units import Duration
from watchtower.scale.base import ActuatorError, ApplyResult

log = logging.getLogger(__name__)

# KEYS[1] = desired hash; ARGV = token, replicas, at. Returns {1, token} when written, {0, stored token} when refused.
_FENCED_SET = """
local stored = tonumber(redis.call('HGET', KEYS[1], 'token') or '-1')
if tonumber(ARGV[1]) < stored then
  return {0, stored}
end
redis.call('HSET', KEYS[1], 'replicas', ARGV[2], 'token', ARGV[1], 'at', ARGV[3])
return {1, tonumber(ARGV[1])}
"""


def desired_key(target: str) -> str:
    return f"wt:scale:{target}:desired"


def pool_key(target: str) -> str:
    return f"wt:scale:{target}:pool"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["local_pool"] = "local_pool"
    # The Redis both sides use. Empty: the daemon's (redis.url, else the embedded stack's).
    redis_url: SecretStr | None = None
    # The pool publishes its size every follow interval; older than this, it is considered gone.
    stale_after: Duration = Field(default=10.0, gt=0)
    timeout: Duration = Field(default=2.0, gt=0)


class LocalPoolActuator:
    def __init__(
        self,
        name: str,
        client: redis.Redis,
        stale_after: float = 10.0,
        clock: Callable[[], float] = time.time,
    ):
        self.name = name
        self.redis = client
        self.stale_after = stale_after
        self.clock = clock
        self._script = client.register_script(_FENCED_SET)

    def current(self) -> int:
        try:
            doc = self.redis.hgetall(pool_key(self.name))
        except redis.RedisError as exc:
            raise ActuatorError(
                f"local_pool {self.name}: cannot read the pool's size from Redis ({type(exc).__name__})"
            ) from None
        if not doc or b"size" not in doc:
            raise ActuatorError(
                f"local_pool {self.name}: no worker pool follows this target; run `watchtower pipeline workers --follow {self.name}`"
            )
        age = self.clock() - float(doc.get(b"at", 0))
        if age > self.stale_after:
            raise ActuatorError(
                f"local_pool {self.name}: the worker pool last reported {age:.0f}s ago (is it running?)"
            )
        return int(doc[b"size"])

    def desired(self) -> tuple[int, int] | None:
        """(replicas, token) as stored, or None."""
        doc = self.redis.hgetall(desired_key(self.name))
        if not doc:
            return None
        return int(doc[b"replicas"]), int(doc[b"token"])

    def apply_fenced(self, replicas: int, token: int) -> ApplyResult:
        try:
            ok, stored = self._script(keys=[desired_key(self.name)], args=[token, replicas, self.clock()])
        except redis.RedisError as exc:
            return ApplyResult(
                self.name,
                replicas,
                None,
                how="redis",
                error=f"cannot write the desired count ({type(exc).__name__})",
            )
        if not ok:
            return ApplyResult(
                self.name,
                replicas,
                None,
                how="redis",
                error=f"fenced: token {token} is older than the stored {stored}",
            )
        return ApplyResult(self.name, replicas, replicas, how="redis")

    def apply(self, replicas: int) -> ApplyResult:
        """Unfenced (token 0): only for a single writer that never ran under a lease."""
        return self.apply_fenced(replicas, 0)

    def close(self) -> None:
        try:
            self.redis.close()
        except redis.RedisError:
            pass


def build(target_name: str, config: Config) -> LocalPoolActuator:
    url = config.redis_url.get_secret_value() if config.redis_url else os.environ.get("REDIS_URL")
    if not url:
        raise ValueError(
            f"scaling.targets.{target_name}.actuator.redis_url: not set and the daemon has no Redis; set it"
        )
    client = redis.Redis.from_url(url, socket_timeout=config.timeout, socket_connect_timeout=config.timeout)
    return LocalPoolActuator(target_name, client, config.stale_after)


class Scalable(Protocol):
    size: int

    def scale(self, count: int) -> None: ...


class PoolFollower:
    """The pool's side: follow `desired` and publish `pool`. A thread; `stop()` returns promptly.

    Counts above `max_replicas` are clamped (a bad write must not fork-bomb the machine). Redis errors are
    logged once per outage and the pool keeps its size.
    """

    def __init__(
        self, target: str, pool: Scalable, client: redis.Redis, interval: float = 0.5, max_replicas: int = 64
    ):
        self.target = target
        self.pool = pool
        self.redis = client
        self.interval = interval
        self.max_replicas = max_replicas
        self.followed: list[int] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._down = False

    def start(self) -> PoolFollower:
        self.publish()
        self._thread = threading.Thread(target=self._run, name=f"pool-follower-{self.target}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            self.redis.delete(pool_key(self.target))
        except redis.RedisError:
            pass

    def publish(self) -> None:
        self.redis.hset(
            pool_key(self.target), mapping={"size": self.pool.size, "at": time.time(), "pid": os.getpid()}
        )

    def step(self) -> None:
        doc = self.redis.hgetall(desired_key(self.target))
        if doc and b"replicas" in doc:
            want = min(int(doc[b"replicas"]), self.max_replicas)
            if want != self.pool.size:
                log.info(
                    "following the desired worker count",
                    extra={"target": self.target, "from": self.pool.size, "to": want},
                )
                self.pool.scale(want)
                self.followed.append(want)
        self.publish()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.step()
                if self._down:
                    log.info("redis reachable again; following", extra={"target": self.target})
                    self._down = False
            except redis.RedisError as exc:
                if not self._down:
                    log.warning(
                        "cannot read the desired worker count; keeping the pool's size",
                        extra={"target": self.target, "error": str(exc)},
                    )
                    self._down = True
