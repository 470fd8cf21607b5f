"""clock_skew: `count` events stamped `ahead` seconds in the future (a producer whose clock runs ahead),
then `then_on_time` on-time events. Beyond `pipeline.max_future_skew` the skewed ones must land in the DLQ
as `future_event_time` and never move the watermark, so the on-time events after them land in `events`,
not `late`; within the bound they are ordinary events."""

from __future__ import annotations

from pydantic import Field

from pipelines.events import FUTURE_EVENT_TIME, encode, new_event
from watchtower.chaos.faults.base import FaultContext, Params, register
from watchtower.core.units import Duration


class SkewParams(Params):
    count: int = Field(default=1, ge=1)
    ahead: Duration = Field(default=365 * 86400.0, gt=0)
    then_on_time: int = Field(default=100, ge=0)


@register("clock_skew", SkewParams)
class ClockSkew:
    def __init__(self, p: SkewParams):
        self.p = p

    def start(self, ctx: FaultContext) -> None:
        now = ctx.now_ms()
        beyond = self.p.ahead > ctx.pipeline.max_future_skew
        for i in range(self.p.count):
            ev = new_event(f"chaos-skew-{i % 5}", 1.0, "paid", now + int(self.p.ahead * 1000))
            if beyond:
                ctx.injector.send(
                    encode(ev),
                    ev["user_id"].encode(),
                    "future",
                    ("dlq",),
                    reason=FUTURE_EVENT_TIME,
                    event_id=ev["event_id"],
                )
            else:
                ctx.injector.send(
                    encode(ev),
                    ev["user_id"].encode(),
                    "skewed_within_bound",
                    ("events",),
                    event_id=ev["event_id"],
                )
        ctx.injector.flush()
        for i in range(self.p.then_on_time):
            ev = new_event(f"chaos-skew-{i % 5}", 1.0, "paid", ctx.now_ms())
            ctx.injector.send(
                encode(ev), ev["user_id"].encode(), "on_time_after_skew", ("events",), event_id=ev["event_id"]
            )
        ctx.note(fault="clock_skew", ahead_s=self.p.ahead, beyond_bound=beyond, on_time=self.p.then_on_time)

    def stop(self, ctx: FaultContext) -> None:
        pass
