"""Incremental reading of a Redis stream for collectors: XREAD from the last id seen, nothing twice.

Redis errors propagate (the runner marks the collector down); the redis-py client reconnects on the
next command, and the cursor resumes from its last id. A stream whose newest id is *below* the cursor
(Redis restarted empty, or the stream was deleted and rewritten) is read again from its start, since
otherwise XREAD would wait for ids that will never come.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

Entry = tuple[str, dict[str, str]]


class RedisUnavailable(RuntimeError):
    """Redis did not answer a collector's command; the message never carries the URL (it may hold a password)."""


def connect(url: str, timeout: float) -> redis.Redis:
    """A client that connects on its first command and gives up on a dead server after `timeout`."""
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)


class LazyRedis:
    """A collector's Redis client: made on its first use (building a collector connects nowhere), closed
    without raising."""

    def __init__(self, url: str, timeout: float):
        self._url = url
        self._timeout = timeout
        self._client: redis.Redis | None = None

    def get(self) -> redis.Redis:
        if self._client is None:
            self._client = connect(self._url, self._timeout)
        return self._client

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - close must not raise
                pass


@contextmanager
def redis_errors(what: str) -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        raise RedisUnavailable(f"{what}: {type(exc).__name__}: {exc}") from exc


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class StreamCursor:
    """Position in one stream. `start_ms`: where the first read begins (an id of that time); None: the
    newest entry only, so a reader that needs the latest state has it from the first cycle."""

    def __init__(self, stream: str, count: int = 1000, start_ms: int | None = None):
        self.stream = stream
        self.count = count
        self.start_ms = start_ms
        self.last_id: str | None = None
        self.resets = 0

    def read(self, client: redis.Redis, max_entries: int = 100_000) -> list[Entry]:
        """Every entry after the cursor (up to `max_entries`), oldest first; never blocks."""
        if self.last_id is None:
            if self.start_ms is None:
                newest = client.xrevrange(self.stream, count=1)
                if not newest:
                    return []
                self.last_id = _decode_id(newest[0][0])
                return [_decode(newest[0])]
            self.last_id = f"{max(0, self.start_ms - 1)}-{2**64 - 1}"  # everything from start_ms on
        out: list[Entry] = []
        while len(out) < max_entries:
            got = client.xread({self.stream: self.last_id}, count=self.count)
            entries = [_decode(e) for _, batch in got for e in batch] if got else []
            if not entries:
                if not out:
                    self._rewind_if_regressed(client)
                break
            out += entries
            self.last_id = entries[-1][0]
            if len(entries) < self.count:
                break
        return out

    def _rewind_if_regressed(self, client: redis.Redis) -> None:
        newest = client.xrevrange(self.stream, count=1)
        if newest and _id_key(_decode_id(newest[0][0])) < _id_key(self.last_id or "0-0"):
            self.last_id = "0-0"
            self.resets += 1


def _decode_id(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _decode(entry: Any) -> Entry:
    entry_id, fields = entry
    return _decode_id(entry_id), {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in fields.items()
    }
