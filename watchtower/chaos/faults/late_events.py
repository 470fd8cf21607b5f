"""late_events: valid events stamped `behind` seconds before now. Beyond the watermark delay they must land
in `late`; within it (e.g. `behind: 45s` with a 60 s delay) they are on time and must land in `events`.
The margin between `behind` and the delay must cover the pipeline's own delay (its watermark trails the
newest event it has seen), so keep `behind` well clear of `pipeline.watermark_delay` either way."""

from __future__ import annotations

from pydantic import Field

from pipelines.events import encode, new_event
from watchtower.chaos.faults.base import FaultContext, Params, register
from watchtower.core.units import Duration


class LateParams(Params):
    count: int = Field(default=100, ge=1)
    behind: Duration = Field(default=7200.0, gt=0, description="seconds before now")
    users: int = Field(default=20, ge=1)


@register("late_events", LateParams)
class LateEvents:
    def __init__(self, p: LateParams):
        self.p = p

    def start(self, ctx: FaultContext) -> None:
        late = self.p.behind > ctx.pipeline.watermark_delay
        kind, outcome = ("late", "late") if late else ("late_inside_watermark", "events")
        t = ctx.now_ms() - int(self.p.behind * 1000)
        for i in range(self.p.count):
            ev = new_event(f"chaos-late-{i % self.p.users}", 1.0, "paid", t)
            ctx.injector.send(encode(ev), ev["user_id"].encode(), kind, (outcome,), event_id=ev["event_id"])
        ctx.note(fault="late_events", sent=self.p.count, expected=outcome)

    def stop(self, ctx: FaultContext) -> None:
        pass
