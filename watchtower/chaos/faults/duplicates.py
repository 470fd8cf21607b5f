"""duplicates: `count` valid events, then a copy of each. `exact`: the same bytes (a producer retry or
a redelivery); `same_id`: the same event_id and event_time with a different amount (an upstream bug). The
originals must land in `events` once; the copies nowhere."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipelines.events import encode, new_event
from watchtower.chaos.faults.base import FaultContext, Params, register


class DuplicateParams(Params):
    count: int = Field(default=100, ge=1)
    mode: Literal["exact", "same_id"] = "exact"


@register("duplicates", DuplicateParams)
class Duplicates:
    def __init__(self, p: DuplicateParams):
        self.p = p

    def start(self, ctx: FaultContext) -> None:
        now = ctx.now_ms()
        originals = [new_event(f"chaos-dup-{i % 10}", 1.0, "created", now) for i in range(self.p.count)]
        for ev in originals:
            ctx.injector.send(
                encode(ev), ev["user_id"].encode(), "valid", ("events",), event_id=ev["event_id"]
            )
        for ev in originals:
            copy = ev if self.p.mode == "exact" else {**ev, "amount": ev["amount"] + 1}
            kind = "duplicate" if self.p.mode == "exact" else "duplicate_same_id"
            ctx.injector.send(encode(copy), ev["user_id"].encode(), kind, ("none",), event_id=ev["event_id"])
        ctx.note(fault="duplicates", mode=self.p.mode, originals=self.p.count, copies=self.p.count)

    def stop(self, ctx: FaultContext) -> None:
        pass
