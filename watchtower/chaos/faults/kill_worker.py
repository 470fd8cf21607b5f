"""kill_worker: SIGKILL of an enricher worker in the middle of a stream of events for users of this run
only; the pool restarts it, the group rebalances, and the workers' Redis state must count every event
exactly once (read back: each user's `events` in `wt:enricher:<group>:user:<user>`), however many
records were redelivered after the kill."""

from __future__ import annotations

import signal
import time

import redis
from pydantic import Field

from pipelines.events import encode, new_event
from pipelines.workers.enricher import key_prefix
from watchtower.chaos.faults.base import FaultContext, FaultError, Params, register, send_signal
from watchtower.core.units import Duration


class KillWorkerParams(Params):
    count: int = Field(default=600, ge=2, description="events: half before the kill, half after")
    users: int = Field(default=12, ge=1)
    verify_within: Duration = Field(default=90.0, gt=0)


@register("kill_worker", KillWorkerParams)
class KillWorker:
    def __init__(self, p: KillWorkerParams):
        self.p = p
        self.expected: dict[str, int] = {}

    def _send(self, ctx: FaultContext, n: int, tag: str) -> None:
        for i in range(n):
            user = f"chaos-w-{tag}-{i % self.p.users}"
            ev = new_event(user, 1.0, "created", ctx.now_ms())
            ctx.injector.send(encode(ev), user.encode(), "worker_event", ("events",), event_id=ev["event_id"])
            self.expected[user] = self.expected.get(user, 0) + 1

    def start(self, ctx: FaultContext) -> None:
        pid = ctx.pid("worker")
        if pid is None:
            raise FaultError("kill_worker: no enricher worker is running")
        tag = f"{int(time.time() * 1000) % 10**8}"
        self._send(ctx, self.p.count // 2, tag)
        ctx.injector.flush()
        send_signal(pid, signal.SIGKILL)
        ctx.note(fault="kill_worker", pid=pid, action="SIGKILL")
        self._send(ctx, self.p.count - self.p.count // 2, tag)

    def stop(self, ctx: FaultContext) -> None:
        pass  # the pool restarts a dead worker by itself

    def verify(self, ctx: FaultContext) -> list[str]:
        return worker_count_problems(ctx, self.expected, self.p.verify_within, "kill_worker")


def worker_count_problems(
    ctx: FaultContext, expected: dict[str, int], within: float, fault: str
) -> list[str]:
    """Problems with the workers' counts of `expected` (user -> events sent; empty: every event counted
    exactly once). Waits up to `within` for the counts to catch up; an over-count ends the wait at once."""
    r = redis.Redis.from_url(ctx.redis_url)
    prefix = key_prefix(ctx.workers_group)
    deadline = time.monotonic() + within
    try:
        while True:
            got = {u: int(r.hget(f"{prefix}:user:{u}", "events") or 0) for u in expected}
            wrong = {u: (got[u], n) for u, n in expected.items() if got[u] != n}
            if not wrong or any(g > n for g, n in wrong.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        r.close()
    ctx.note(fault=fault, users=len(expected), counted=sum(got.values()), sent=sum(expected.values()))
    return [
        f"worker state: user {u} counted {g} events, {n} were sent" for u, (g, n) in sorted(wrong.items())[:5]
    ]
