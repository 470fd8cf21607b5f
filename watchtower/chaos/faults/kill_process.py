"""kill_process: SIGKILL the Spark job (its whole process group: the Python driver and its JVM), and
restart it when the step's duration is over or on rollback. The job must resume from its checkpoint and
staged batches and lose nothing, write nothing twice."""

from __future__ import annotations

import os
import signal
from typing import Literal

from watchtower.chaos.faults.base import FaultContext, FaultError, Params, register


class KillParams(Params):
    target: Literal["spark"] = "spark"


@register("kill_process", KillParams)
class KillProcess:
    def __init__(self, p: KillParams):
        self.p = p
        self.killed = False

    def start(self, ctx: FaultContext) -> None:
        pid = ctx.pid(self.p.target)
        if pid is None:
            raise FaultError(f"kill_process: {self.p.target} is not running")
        self.killed = True  # before the kill: a rollback must restart it whatever happens next
        try:
            os.killpg(pid, signal.SIGKILL)  # its own session: the JVM goes too
        except ProcessLookupError:
            pass
        ctx.note(fault="kill_process", target=self.p.target, pid=pid, action="SIGKILL")

    def stop(self, ctx: FaultContext) -> None:
        if ctx.pid(self.p.target) is None:
            try:
                ctx.restart(self.p.target)
                ctx.note(fault="kill_process", target=self.p.target, action="restarted")
            except Exception as exc:  # noqa: BLE001 - stop never raises; the journal has it
                ctx.note(fault="kill_process", target=self.p.target, action="restart failed", error=str(exc))
