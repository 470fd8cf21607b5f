"""malformed: `count` records of each contract failure reason (`pipelines.events.REASONS`), plus
non-UTF-8 bytes, a null value and a payload over `pipeline.max_event_bytes`. Each must land in the DLQ
table and the DLQ topic with its reason."""

from __future__ import annotations

from pydantic import Field, field_validator

from pipelines.events import encode, new_event
from watchtower.chaos.faults.base import FaultContext, Params, register

T = "2026-01-01T00:00:00.000Z"


def payloads(max_bytes: int) -> dict[str, tuple[bytes | None, str]]:
    """name -> (value, the failure_reason prefix the contract gives it)."""
    base = new_event("chaos-bad", 1.0, "paid", 0)
    return {
        "empty": (b"", "empty"),
        "null_value": (None, "empty"),
        "oversized": (encode({**base, "order_id": "x" * (max_bytes + 1)}), "oversized"),
        "bad_json": (b'{"event_id": "x", ', "bad_json"),
        "non_utf8": (b"\xff\xfe\xfd not utf-8", "bad_json"),
        "not_an_object": (b"[1, 2, 3]", "not_an_object"),
        "missing_field": (encode({k: v for k, v in base.items() if k != "user_id"}), "missing_field:user_id"),
        "wrong_type": (encode({**base, "amount": "12"}), "wrong_type:amount"),
        "bad_value": (encode({**base, "amount": -1.0}), "bad_value:amount"),
        "bad_event_time": (encode({**base, "event_time": "soon"}), "bad_value:event_time"),
        "unknown_event_type": (encode({**base, "event_type": "teleported"}), "unknown_event_type"),
    }


KINDS = tuple(payloads(1024))


class MalformedParams(Params):
    count: int = Field(default=2, ge=1, description="records of each kind")
    kinds: tuple[str, ...] = KINDS

    @field_validator("kinds")
    @classmethod
    def _known(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [k for k in v if k not in KINDS]
        if bad:
            raise ValueError(f"unknown kinds {bad}; use some of: {', '.join(KINDS)}")
        return v


@register("malformed", MalformedParams)
class Malformed:
    def __init__(self, p: MalformedParams):
        self.p = p

    def start(self, ctx: FaultContext) -> None:
        table = payloads(ctx.pipeline.max_event_bytes)
        for kind in self.p.kinds:
            value, reason = table[kind]
            for _ in range(self.p.count):
                ctx.injector.send(value, b"chaos-bad", f"malformed:{kind}", ("dlq",), reason=reason)
        ctx.note(fault="malformed", kinds=list(self.p.kinds), each=self.p.count)

    def stop(self, ctx: FaultContext) -> None:
        pass
