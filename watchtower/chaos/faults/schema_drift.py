"""schema_drift: an upstream schema change. `extra_field`: events with a new field the contract does not
know (still valid: land in `events`); `renamed_field`: `user_id` renamed to `userId` (breaks the contract:
the DLQ as `missing_field:user_id`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipelines.events import encode, new_event
from watchtower.chaos.faults.base import FaultContext, Params, register


class DriftParams(Params):
    count: int = Field(default=100, ge=1)
    change: Literal["extra_field", "renamed_field"] = "extra_field"


@register("schema_drift", DriftParams)
class SchemaDrift:
    def __init__(self, p: DriftParams):
        self.p = p

    def start(self, ctx: FaultContext) -> None:
        now = ctx.now_ms()
        for i in range(self.p.count):
            ev = new_event(f"chaos-drift-{i % 10}", 1.0, "paid", now)
            key = ev["user_id"].encode()
            if self.p.change == "extra_field":
                ctx.injector.send(
                    encode({**ev, "currency": "EUR"}),
                    key,
                    "extra_field",
                    ("events",),
                    event_id=ev["event_id"],
                )
            else:
                drifted = {("userId" if k == "user_id" else k): v for k, v in ev.items()}
                ctx.injector.send(
                    encode(drifted),
                    key,
                    "renamed_field",
                    ("dlq",),
                    reason="missing_field:user_id",
                    event_id=ev["event_id"],
                )
        ctx.note(fault="schema_drift", change=self.p.change, sent=self.p.count)

    def stop(self, ctx: FaultContext) -> None:
        pass
