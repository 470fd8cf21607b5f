"""One actor among several daemons: a lease in Redis with a fencing token (`LeaderGate` for `ha.enabled`).

    <prefix>lease         holder id, SET NX PX <lease>: whoever holds it leads
    <prefix>lease:token   INCR on every acquisition: the fencing token, larger for every new holder

A keeper thread acquires the lease, then renews it every lease/3 with a compare-and-extend script (only
the holder's own id is extended). `holds()` does no I/O: it returns the token while the last successful
acquire or renewal, counted from *before* its request was sent, is younger than the lease less a margin.
So a leader that cannot reach Redis, loses the key or stalls stops leading before its key can expire and a
successor can be elected; a failed renewal ends leadership at once. A follower retries when the key is due
to expire, so a killed leader is replaced within the lease time. `stop()` releases the lease so a clean
shutdown hands over at once.

Actors pass the token to what they write (the alert outbox claim, `scale.fencing.fenced_set`), so a write
from a deposed leader that slept through its own deposition is refused by the resource itself.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

import redis

from watchtower.config.ha import HAConfig

log = logging.getLogger(__name__)

# KEYS[1] = lease, KEYS[2] = token counter; ARGV[1] = holder, ARGV[2] = lease ms.
# Returns {token, 0} when acquired, {0, pttl} when someone else holds it.
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {redis.call('INCR', KEYS[2]), 0}
end
return {0, redis.call('PTTL', KEYS[1])}
"""

# Compare-and-extend: only the holder's own lease is extended. Returns 1, or 0 when it is not ours.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# holds() stops this share of the lease before the key can expire in Redis (clock rate drift, slow replies).
SAFETY = 0.1


def default_holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RedisLease:
    """A `LeaderGate` backed by a Redis lease. `start()` returns at once; `holds()` never blocks."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        lease: float = 10.0,
        prefix: str = "watchtower:ha:",
        holder_id: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if lease <= 0:
            raise ValueError("ha.lease must be positive")
        self.r = client
        self.lease = lease
        self.key = f"{prefix}lease"
        self.token_key = f"{prefix}lease:token"
        self.holder_id = holder_id or default_holder_id()
        self.monotonic = monotonic
        self._token: int | None = None
        self._valid_until = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.acquisitions = 0
        self.losses = 0

    @property
    def lease_ms(self) -> int:
        return max(1, int(self.lease * 1000))

    # ------------------------------------------------------------------------------------ the gate

    def holds(self) -> int | None:
        """The fencing token while this process leads, else None. No I/O."""
        with self._lock:
            if self._token is not None and self.monotonic() < self._valid_until:
                return self._token
            return None

    # ------------------------------------------------------------------------------- one step each

    def try_acquire(self) -> float:
        """Acquire the lease if free. Returns how long to wait before the next try (seconds)."""
        sent = self.monotonic()
        token, pttl = self.r.eval(_ACQUIRE, 2, self.key, self.token_key, self.holder_id, self.lease_ms)
        if token:
            self._lead(int(token), sent)
            return self.lease / 3
        # Someone holds it: try again just after it would expire, and at least every lease/3.
        wait = (pttl / 1000.0 + 0.01) if pttl and pttl > 0 else 0.01
        return min(max(wait, 0.01), self.lease / 3)

    def renew(self) -> bool:
        """Extend our lease; on failure (not ours any more, or Redis unreachable) stop leading at once."""
        sent = self.monotonic()
        try:
            ok = bool(self.r.eval(_RENEW, 1, self.key, self.holder_id, self.lease_ms))
        except redis.RedisError as exc:
            self._lose(f"renewal failed: {type(exc).__name__}")
            return False
        if not ok:
            self._lose("lease lost (expired or taken)")
            return False
        with self._lock:
            self._valid_until = sent + self.lease * (1 - SAFETY)
        return True

    def release(self) -> None:
        """Give the lease up now (a clean stop), so a follower takes over without waiting for expiry."""
        was = self.holds()
        with self._lock:
            self._token = None
        if was is not None:
            try:
                self.r.eval(_RELEASE, 1, self.key, self.holder_id)
                log.info("leadership released", extra={"holder": self.holder_id, "token": was})
            except redis.RedisError as exc:
                log.warning("could not release the lease; it expires by itself", extra={"error": str(exc)})

    def _lead(self, token: int, sent: float) -> None:
        with self._lock:
            self._token = token
            self._valid_until = sent + self.lease * (1 - SAFETY)
        self.acquisitions += 1
        log.info(
            "leadership acquired", extra={"holder": self.holder_id, "token": token, "lease_s": self.lease}
        )

    def _lose(self, why: str) -> None:
        with self._lock:
            had, self._token = self._token, None
        if had is not None:
            self.losses += 1
            log.warning("leadership lost", extra={"holder": self.holder_id, "token": had, "reason": why})

    # ------------------------------------------------------------------------------------ keeper

    def start(self) -> RedisLease:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._keep, name="watchtower-lease", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.release()

    def _keep(self) -> None:
        while not self._stop.is_set():
            leading = self._token is not None
            try:
                if leading:
                    wait = self.lease / 3
                    if not self.renew():
                        wait = 0.0  # try to get it back (or learn who has it) right away
                else:
                    wait = self.try_acquire()
            except redis.RedisError as exc:
                self._lose(f"redis error: {type(exc).__name__}")
                log.debug("lease step failed", extra={"error": str(exc)})
                wait = min(1.0, self.lease / 3)
            except Exception:  # a bug here must not leave a leader that no longer renews: step down, go on
                self._lose("lease keeper error")
                log.exception("lease keeper step failed")
                wait = min(1.0, self.lease / 3)
            if self._stop.wait(wait):
                break

    def status(self) -> dict[str, object]:
        return {"holder": self.holder_id, "token": self.holds(), "lease_seconds": self.lease}


def build_lease(config: HAConfig, redis_url: str) -> RedisLease:
    """The lease for `ha:`; no connection is made until `start()`. Redis calls time out within lease/3,
    so a hung Redis ends leadership through `holds()` and the keeper is free to retry."""
    timeout = max(0.1, config.lease / 3)
    client = redis.Redis.from_url(redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
    return RedisLease(client, lease=config.lease, prefix=config.redis_prefix, holder_id=config.holder_id)
