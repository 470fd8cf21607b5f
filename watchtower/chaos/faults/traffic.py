"""burst and hot_key: valid traffic shapes. `burst` sends `count` events as fast as the producer takes
them (many times the background rate); `hot_key` sends `count` events of which `share` go to one user
(one partition). Every one of them must land in `events` exactly once."""

from __future__ import annotations

from pydantic import Field

from pipelines.events import encode, new_event
from watchtower.chaos.faults.base import FaultContext, Params, register


class BurstParams(Params):
    count: int = Field(default=5000, ge=1)
    users: int = Field(default=100, ge=1)


@register("burst", BurstParams)
class Burst:
    def __init__(self, p: BurstParams):
        self.p = p

    def start(self, ctx: FaultContext) -> None:
        now = ctx.now_ms()
        for i in range(self.p.count):
            ev = new_event(f"chaos-burst-{i % self.p.users}", 1.0, "created", now)
            ctx.injector.send(
                encode(ev), ev["user_id"].encode(), "burst", ("events",), event_id=ev["event_id"]
            )
        ctx.note(fault="burst", sent=self.p.count)

    def stop(self, ctx: FaultContext) -> None:
        pass


class HotKeyParams(Params):
    count: int = Field(default=2000, ge=1)
    share: float = Field(default=0.9, gt=0, le=1, description="of the events on the hot user")


@register("hot_key", HotKeyParams)
class HotKey:
    def __init__(self, p: HotKeyParams):
        self.p = p

    def start(self, ctx: FaultContext) -> None:
        now = ctx.now_ms()
        hot = int(self.p.count * self.p.share)
        for i in range(self.p.count):
            user = "chaos-hot" if i < hot else f"chaos-cold-{i % 50}"
            ev = new_event(user, 1.0, "paid", now)
            ctx.injector.send(encode(ev), user.encode(), "hot_key", ("events",), event_id=ev["event_id"])
        ctx.note(fault="hot_key", sent=self.p.count, hot=hot)

    def stop(self, ctx: FaultContext) -> None:
        pass
