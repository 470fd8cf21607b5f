"""Silences in Redis, read cheaply on every evaluation, and forgotten a while after they end.

Layout (under the alerting prefix):
    silences           hash  id -> silence JSON
    silences:ends      zset  id -> ends_at (what is active or ended is a range query, not a scan)
    silences:version   int   bumped by every add and expire, in the same MULTI/EXEC as the write

`active(now)`, called once per evaluation, costs one GET of the version: the silences that had not ended
are cached with the version they were read at and re-read (only those: a ZRANGEBYSCORE and an HMGET)
when another process (`watchtower silence add`, another daemon) changed them. Time passing needs no
re-read: a cached silence stops applying when `now` passes its end.

Ended silences stay listed (`watchtower silence list --all`) for `retention` (ENDED_RETENTION, a day,
by default) and are then deleted, by the evaluation's reads (at most every PRUNE_EVERY seconds, with the
evaluation's `now`) and by `silence list --all`.
"""

from __future__ import annotations

import threading

import orjson
import redis

from watchtower.alerting.silences import Silence

ENDED_RETENTION = 24 * 3600.0
PRUNE_EVERY = 60.0

_UNREAD = object()


class SilenceStore:
    """Thread-safe as far as redis-py's pool is; the cache has its own lock."""

    def __init__(self, client: redis.Redis, prefix: str, retention: float = ENDED_RETENTION) -> None:
        self.r = client
        self.retention = retention
        self._hash, self._ends, self._version = (
            prefix + "silences",
            prefix + "silences:ends",
            prefix + "silences:version",
        )
        self._lock = threading.Lock()
        self._cached_version: object = _UNREAD
        self._cached: list[Silence] = []
        self._pruned_at = float("-inf")
        self.reads = 0  # how often the silences themselves were read, not just the version (tests, status)

    # -- writes -------------------------------------------------------------------------------------

    def put(self, silence: Silence) -> Silence:
        """Add or replace a silence: one MULTI/EXEC with its index entry and the version."""
        with self.r.pipeline(transaction=True) as p:
            p.hset(self._hash, silence.id, orjson.dumps(silence.to_dict()))
            p.zadd(self._ends, {silence.id: silence.ends_at})
            p.incr(self._version)
            p.execute()
        return silence

    def prune(self, now: float, older_than: float | None = None) -> int:
        """Delete the silences that ended more than `older_than` (default: the retention) ago."""
        cutoff = now - (self.retention if older_than is None else older_than)
        self._index_if_missing()
        old = self.r.zrangebyscore(self._ends, "-inf", f"({cutoff}")
        self._pruned_at = now
        if not old:
            return 0
        with self.r.pipeline(transaction=True) as p:
            p.hdel(self._hash, *old)
            p.zrem(self._ends, *old)
            deleted, _ = p.execute()
        return int(deleted)

    # -- reads --------------------------------------------------------------------------------------

    def get(self, silence_id: str) -> Silence | None:
        raw = self.r.hget(self._hash, silence_id)
        return None if raw is None else Silence.from_dict(orjson.loads(raw))

    def all(self, now: float | None = None) -> list[Silence]:
        """Every stored silence, ended ones included (the CLI's --all); pruned first when `now` is given."""
        if now is not None:
            self.prune(now)
        return [Silence.from_dict(orjson.loads(raw)) for raw in self.r.hvals(self._hash)]

    def active(self, now: float) -> list[Silence]:
        """The silences that have not ended at `now` (including ones that start later), from the cache
        while the version in Redis is the one they were read at."""
        if now - self._pruned_at >= PRUNE_EVERY:
            self.prune(now)
        version = self.r.get(self._version)
        with self._lock:
            if version != self._cached_version:
                self._cached, self._cached_version = self._read_unended(now), version
            return [s for s in self._cached if s.ends_at > now]

    def _read_unended(self, now: float) -> list[Silence]:
        self.reads += 1
        self._index_if_missing()
        ids = self.r.zrangebyscore(self._ends, f"({now}", "+inf")
        raws = self.r.hmget(self._hash, ids) if ids else []
        return [
            Silence.from_dict(orjson.loads(raw)) for raw in raws if raw is not None
        ]  # None: pruned meanwhile

    def _index_if_missing(self) -> None:
        """Silences written before the index existed get one (once: afterwards both sizes agree)."""
        with self.r.pipeline(transaction=True) as p:
            p.hlen(self._hash)
            p.zcard(self._ends)
            stored, indexed = p.execute()
        if stored != indexed:
            every = self.all()
            with self.r.pipeline(transaction=True) as p:
                p.delete(self._ends)
                if every:
                    p.zadd(self._ends, {s.id: s.ends_at for s in every})
                p.execute()
