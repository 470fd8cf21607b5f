"""pause_process: SIGSTOP a dependency (the broker, Redis or the Spark driver), SIGCONT it when the step's
duration is over or the run is rolled back. A hung process is how most real outages look: connections
stay open, nothing answers."""

from __future__ import annotations

import signal
from typing import Literal

from watchtower.chaos.faults.base import FaultContext, FaultError, Params, register, send_signal


class PauseParams(Params):
    target: Literal["broker", "redis", "spark"]


@register("pause_process", PauseParams)
class PauseProcess:
    def __init__(self, p: PauseParams):
        self.p = p
        self.pid: int | None = None

    def start(self, ctx: FaultContext) -> None:
        pid = ctx.pid(self.p.target)
        if pid is None:
            raise FaultError(f"pause_process: {self.p.target} is not running")
        self.pid = pid  # kept before the signal: a rollback must continue it whatever happens next
        if not send_signal(pid, signal.SIGSTOP):
            raise FaultError(f"pause_process: cannot stop {self.p.target} (pid {pid})")
        ctx.note(fault="pause_process", target=self.p.target, pid=pid, action="SIGSTOP")

    def stop(self, ctx: FaultContext) -> None:
        # A rollback-only instance never started: it continues whatever runs as the target now.
        pid = self.pid if self.pid is not None else ctx.pid(self.p.target)
        if pid is not None and send_signal(pid, signal.SIGCONT):
            ctx.note(fault="pause_process", target=self.p.target, pid=pid, action="SIGCONT")
