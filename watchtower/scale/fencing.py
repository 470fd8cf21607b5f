"""Fenced writes: a resource that refuses a write carrying an older fencing token than one it has seen.

The lease (`watchtower.daemon.leader.RedisLease`) hands out a token that grows with every change of holder.
A deposed leader that was paused (GC, SIGSTOP) and wakes up still believing it leads carries an old token;
a write guarded here is then refused, whatever the deposed process believes.

    fenced_set(client, "wt:workers:desired", 3, token)   # True: written; False: a newer leader wrote
"""

from __future__ import annotations

from typing import Any

import redis

# KEYS[1] = the value, KEYS[2] = the highest token seen; ARGV[1] = value, ARGV[2] = token.
FENCED_SET = """
local seen = tonumber(redis.call('GET', KEYS[2]) or '0')
local token = tonumber(ARGV[2])
if token < seen then return 0 end
if token > seen then redis.call('SET', KEYS[2], ARGV[2]) end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""


def fence_key(key: str) -> str:
    return f"{key}:fence"


def fenced_set(client: redis.Redis, key: str, value: Any, token: int, fence: str | None = None) -> bool:
    """Set `key` to `value` unless a write with a newer token than `token` was made. Atomic (one script).

    `fence` is the key keeping the highest token seen (default `<key>:fence`); share one fence between keys
    that must move together. Returns whether the write was made. Raises redis.RedisError when Redis fails.
    """
    if token < 1:
        raise ValueError(f"a fencing token is a positive integer, not {token!r}")
    return bool(client.eval(FENCED_SET, 2, key, fence or fence_key(key), value, token))
