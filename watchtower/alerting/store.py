"""Durable alerting state in Redis: the lifecycle state, silences, and the notification outbox.

Why an outbox: the lifecycle's state and the notifications it produced must never disagree. `commit`
writes both in one MULTI/EXEC, so after a crash either the state moved on and its messages are queued,
or neither happened. A restarted daemon therefore neither pages again for an alert it already paged
(the state says "firing, notified") nor forgets a resolve (it is still in the outbox).

Layout (all under `prefix`):
    state                      the lifecycle state, JSON
    silences, silences:ends, silences:version   the silences (see silence_store.py)
    outbox:q:<sink>:<group>    list  items of one incident for one notifier, oldest first
    outbox:due                 zset  member [sink, group] -> when its head may be tried next
    threads                    hash  [sink, group] -> thread_ref JSON (where the incident's thread is)
    deadletter                 list  items a notifier refused for good, with the reason

Invariant: a queue is non-empty exactly when its member is in `outbox:due`. The scripts below keep it:
each settles the head of one queue and reschedules or unschedules it in the same step.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
import redis

from watchtower.alerting.codec import notification_from_dict, notification_to_dict
from watchtower.alerting.model import Notification, NotificationKind
from watchtower.alerting.silence_store import SilenceStore
from watchtower.alerting.silences import Silence


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One notification waiting for one notifier (`sink`)."""

    id: str
    sink: str
    notification: Notification
    enqueued_at: float
    attempts: int = 0  # how many sends were started, persisted before each send
    last_error: str = ""

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "sink": self.sink,
                "notification": notification_to_dict(self.notification),
                "enqueued_at": self.enqueued_at,
                "attempts": self.attempts,
                "last_error": self.last_error,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> OutboxItem:
        d = orjson.loads(raw)
        return cls(
            id=d["id"],
            sink=d["sink"],
            notification=notification_from_dict(d["notification"]),
            enqueued_at=d["enqueued_at"],
            attempts=d.get("attempts", 0),
            last_error=d.get("last_error", ""),
        )


class StaleLeaderError(RuntimeError):
    """A write carried an older leader token than one the store has already seen."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    item: OutboxItem
    reason: str
    at: float


# --------------------------------------------------------------------------------------------- scripts

# Replace the head of a queue (attempt count, last error) and set when it is due, if it is still the item
# the caller holds. Returns 1, or 0 when the head changed under the caller.
_UPDATE_HEAD = """
local head = redis.call('LINDEX', KEYS[1], 0)
if not head or cjson.decode(head)['id'] ~= ARGV[1] then return 0 end
redis.call('LSET', KEYS[1], 0, ARGV[2])
if ARGV[3] ~= '' then redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4]) end
return 1
"""

# Fenced claim: as _UPDATE_HEAD, but first refuse a token older than the highest the outbox has seen
# (KEYS[3]); returns -1 then. Only the current leader of several daemons sends.
_CLAIM_HEAD = """
local seen = tonumber(redis.call('GET', KEYS[3]) or '0')
local token = tonumber(ARGV[5])
if token < seen then return -1 end
if token > seen then redis.call('SET', KEYS[3], ARGV[5]) end
local head = redis.call('LINDEX', KEYS[1], 0)
if not head or cjson.decode(head)['id'] ~= ARGV[1] then return 0 end
redis.call('LSET', KEYS[1], 0, ARGV[2])
return 1
"""

# Remove the head of a queue once it is settled: delivered (record or clear the thread ref) or dead
# (push it to the dead-letter list). Then the next item is due at once, or the queue leaves the schedule.
_SETTLE_HEAD = """
local head = redis.call('LINDEX', KEYS[1], 0)
if not head or cjson.decode(head)['id'] ~= ARGV[1] then return 0 end
redis.call('LPOP', KEYS[1])
if ARGV[3] == 'set' then redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
elseif ARGV[3] == 'del' then redis.call('HDEL', KEYS[3], ARGV[2]) end
if ARGV[5] ~= '' then redis.call('RPUSH', KEYS[4], ARGV[5]) end
if redis.call('LLEN', KEYS[1]) > 0 then redis.call('ZADD', KEYS[2], ARGV[6], ARGV[2])
else redis.call('ZREM', KEYS[2], ARGV[2]) end
return 1
"""


class AlertStore:
    """The one place where incident state lives. Thread-safe as far as redis-py's pool is."""

    def __init__(
        self, client: redis.Redis, prefix: str = "watchtower:alerting:", sinks: Sequence[str] = ()
    ) -> None:
        self.r = client
        self.prefix = prefix
        self.sinks = tuple(sinks)
        self._update_head = client.register_script(_UPDATE_HEAD)
        self._settle_head = client.register_script(_SETTLE_HEAD)
        self.silence_store = SilenceStore(client, prefix)
        self._claim_head = client.register_script(_CLAIM_HEAD)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> AlertStore:
        return cls(redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5), **kwargs)

    def close(self) -> None:
        self.r.close()

    # Keys.
    def _k(self, name: str) -> str:
        return self.prefix + name

    @staticmethod
    def member(sink: str, group_key: str) -> str:
        return orjson.dumps([sink, group_key]).decode()

    def _queue(self, sink: str, group_key: str) -> str:
        return self._k(f"outbox:q:{sink}:{group_key}")

    # ------------------------------------------------------------------------------ lifecycle state

    def load_state(self) -> Any | None:
        """The last committed lifecycle state (as JSON data), or None on a fresh store."""
        raw = self.r.get(self._k("state"))
        return None if raw is None else orjson.loads(raw)

    def commit(
        self,
        state: Any,
        notifications: Sequence[Notification],
        now: float | None = None,
        token: int | None = None,
    ) -> list[OutboxItem]:
        """Save the lifecycle state and enqueue the notifications it produced, atomically.

        `state` is anything JSON can hold (the lifecycle's serialized state). Each notification is
        queued once per sink, behind earlier messages of the same incident. With a leader's fencing `token`
        the commit is refused (StaleLeaderError, or redis.WatchError on a race) once a newer leader wrote.
        """
        now = time.time() if now is None else now
        if notifications and not self.sinks:
            raise ValueError("AlertStore has no sinks: pass the notifier names it queues for")
        items = [
            OutboxItem(id=uuid.uuid4().hex, sink=sink, notification=n, enqueued_at=now)
            for n in notifications
            for sink in self.sinks
        ]
        with self.r.pipeline(transaction=True) as p:
            if token is not None:  # one of several daemons: refuse a commit from a deposed leader
                p.watch(self._k("outbox:fence"))
                seen = int(p.get(self._k("outbox:fence")) or 0)
                if token < seen:
                    raise StaleLeaderError(f"leader token {token} is older than {seen}: another daemon leads")
                p.multi()
                if token > seen:
                    p.set(self._k("outbox:fence"), token)
            p.set(self._k("state"), orjson.dumps(state))
            for item in items:
                p.rpush(self._queue(item.sink, item.notification.group_key), item.to_json())
                # NX: a queue already waiting for a retry keeps its time; new messages queue behind.
                p.zadd(
                    self._k("outbox:due"), {self.member(item.sink, item.notification.group_key): now}, nx=True
                )
            p.execute()
        return items

    # ------------------------------------------------------------------------------------- outbox

    def due(self, now: float, limit: int = 100) -> list[tuple[str, str]]:
        """(sink, group_key) pairs whose head may be tried at `now`, earliest first."""
        members = self.r.zrangebyscore(self._k("outbox:due"), "-inf", now, start=0, num=limit)
        return [tuple(orjson.loads(m)) for m in members]  # type: ignore[misc]

    def next_due_at(self) -> float | None:
        first = self.r.zrange(self._k("outbox:due"), 0, 0, withscores=True)
        return first[0][1] if first else None

    def head(self, sink: str, group_key: str) -> OutboxItem | None:
        raw = self.r.lindex(self._queue(sink, group_key), 0)
        return None if raw is None else OutboxItem.from_json(raw)

    def pending(self, sink: str, group_key: str) -> list[OutboxItem]:
        return [OutboxItem.from_json(raw) for raw in self.r.lrange(self._queue(sink, group_key), 0, -1)]

    def pending_count(self) -> int:
        members = self.r.zrange(self._k("outbox:due"), 0, -1)
        with self.r.pipeline(transaction=False) as p:
            for m in members:
                sink, group = orjson.loads(m)
                p.llen(self._queue(sink, group))
            return sum(p.execute())

    def update_head(self, item: OutboxItem, due_at: float | None = None) -> bool:
        """Persist a changed head (attempts, last_error); with `due_at`, try it next at that time."""
        group = item.notification.group_key
        return bool(
            self._update_head(
                keys=[self._queue(item.sink, group), self._k("outbox:due")],
                args=[
                    item.id,
                    item.to_json(),
                    "" if due_at is None else repr(due_at),
                    self.member(item.sink, group),
                ],
            )
        )

    def start_attempt(self, item: OutboxItem) -> OutboxItem:
        """Count an attempt *before* sending, so a send cut short by a crash is known as maybe-sent."""
        started = replace(item, attempts=item.attempts + 1)
        self.update_head(started)
        return started

    def claim(self, item: OutboxItem, token: int | None) -> OutboxItem | None:
        """`start_attempt` for one of several daemons: fenced by the leader's `token`.

        Returns the item with its attempt counted, or None when the claim is refused: a newer leader has
        claimed before (the token is stale) or the head changed. `token=None` (a single daemon) is unfenced.
        """
        if token is None:
            return self.start_attempt(item)
        started = replace(item, attempts=item.attempts + 1)
        group = item.notification.group_key
        got = self._claim_head(
            keys=[self._queue(item.sink, group), self._k("outbox:due"), self._k("outbox:fence")],
            args=[item.id, started.to_json(), "", "", token],
        )
        return started if got == 1 else None

    def outbox_fence(self) -> int:
        """The highest leader token that has claimed from the outbox (0: none)."""
        return int(self.r.get(self._k("outbox:fence")) or 0)

    def ack(self, item: OutboxItem, thread_ref: dict[str, str], now: float | None = None) -> bool:
        """Delivered: remove the item and remember where the incident's thread is, in one step.

        A RESOLVED closes the incident, so its thread ref is dropped: a new FIRING opens a new thread.
        """
        closing = item.notification.kind is NotificationKind.RESOLVED
        mode, ref = (
            ("del", "")
            if closing
            else (("set", orjson.dumps(thread_ref).decode()) if thread_ref else ("", ""))
        )
        return self._settle(item, mode, ref, "", now)

    def dead_letter(self, item: OutboxItem, reason: str, now: float | None = None) -> bool:
        """Refused for good: move the item to the dead-letter list with the reason; the queue goes on."""
        now = time.time() if now is None else now
        entry = orjson.dumps({"item": orjson.loads(item.to_json()), "reason": reason, "at": now}).decode()
        return self._settle(item, "", "", entry, now)

    def _settle(self, item: OutboxItem, mode: str, ref: str, dead: str, now: float | None) -> bool:
        group = item.notification.group_key
        now = time.time() if now is None else now
        return bool(
            self._settle_head(
                keys=[
                    self._queue(item.sink, group),
                    self._k("outbox:due"),
                    self._k("threads"),
                    self._k("deadletter"),
                ],
                args=[item.id, self.member(item.sink, group), mode, ref, dead, repr(now)],
            )
        )

    def thread_ref(self, sink: str, group_key: str) -> dict[str, str]:
        raw = self.r.hget(self._k("threads"), self.member(sink, group_key))
        return {} if raw is None else orjson.loads(raw)

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        out = []
        for raw in self.r.lrange(self._k("deadletter"), 0, limit - 1):
            d = orjson.loads(raw)
            out.append(DeadLetter(OutboxItem.from_json(orjson.dumps(d["item"])), d["reason"], d["at"]))
        return out

    # ------------------------------------------------------------------------------------ silences

    def add_silence(self, silence: Silence) -> Silence:
        return self.silence_store.put(silence)

    def silences(self, now: float | None = None, include_expired: bool = False) -> list[Silence]:
        """Silences sorted by start; ended ones (kept for the retention, see silence_store.py) only with
        `include_expired`. Without it, the cached read the evaluation makes every cycle."""
        now = time.time() if now is None else now
        keep = self.silence_store.all(now) if include_expired else self.silence_store.active(now)
        return sorted(keep, key=lambda s: (s.starts_at, s.id))

    def get_silence(self, silence_id: str) -> Silence | None:
        return self.silence_store.get(silence_id)

    def expire_silence(self, silence_id: str, now: float | None = None) -> Silence | None:
        """End a silence now (it stays listed with --all for the retention); None when there is no such id."""
        now = time.time() if now is None else now
        s = self.get_silence(silence_id)
        if s is None:
            return None
        return self.silence_store.put(replace(s, ends_at=min(s.ends_at, now)))

    def prune_silences(self, older_than: float, now: float | None = None) -> int:
        """Forget silences that ended more than `older_than` seconds ago."""
        return self.silence_store.prune(time.time() if now is None else now, older_than)
