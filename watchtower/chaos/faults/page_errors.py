"""page_errors: the alert endpoint (Slack, here the local page receiver) answers 429 (with Retry-After)
or 500 for `seconds`. Pages must be retried by the dispatcher and arrive late, not be lost."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from watchtower.chaos.faults.base import FaultContext, Params, register
from watchtower.core.units import Duration


class PageErrorParams(Params):
    status: Literal[429, 500, 502, 503] = 429
    seconds: Duration = Field(default=10.0, gt=0)


@register("page_errors", PageErrorParams)
class PageErrors:
    def __init__(self, p: PageErrorParams):
        self.p = p

    def start(self, ctx: FaultContext) -> None:
        ctx.fail_pages(self.p.status, self.p.seconds)
        ctx.note(fault="page_errors", status=self.p.status, seconds=self.p.seconds)

    def stop(self, ctx: FaultContext) -> None:
        ctx.fail_pages(200, 0.0)
