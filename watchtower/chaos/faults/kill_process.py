"""kill_process: SIGKILL a process and restart it when the step's duration is over or on rollback.

`spark`: the Spark job's whole process group (the Python driver and its JVM); it must resume from its
checkpoint and staged batches and lose nothing, write nothing twice. `daemon`: the watchtower daemon
(`watchtower run`); restarted, it restores the alert state and the outbox from Redis and must neither page
a firing alert again nor lose its resolve. `while_firing: RULE` waits (at most `wait`) until the daemon's
/api/v1/alerts lists that rule as firing, so the kill lands mid-incident."""

from __future__ import annotations

import os
import signal
import time
from typing import Literal

from pydantic import Field

from watchtower.chaos.faults.base import FaultContext, FaultError, Params, register
from watchtower.core.units import Duration


class KillParams(Params):
    target: Literal["spark", "daemon"] = "spark"
    while_firing: str | None = None
    wait: Duration = Field(default=60.0, gt=0, description="how long while_firing waits for the rule")


@register("kill_process", KillParams)
class KillProcess:
    def __init__(self, p: KillParams):
        self.p = p
        self.killed = False

    def start(self, ctx: FaultContext) -> None:
        if self.p.while_firing is not None:
            deadline = time.monotonic() + self.p.wait
            while self.p.while_firing not in ctx.firing():
                if time.monotonic() > deadline:
                    raise FaultError(
                        f"kill_process: {self.p.while_firing} did not fire within {self.p.wait:.0f}s; "
                        "nothing was killed"
                    )
                time.sleep(0.2)
        pid = ctx.pid(self.p.target)
        if pid is None:
            raise FaultError(f"kill_process: {self.p.target} is not running")
        self.killed = True  # before the kill: a rollback must restart it whatever happens next
        try:
            os.killpg(pid, signal.SIGKILL)  # its own session: the JVM goes too
        except ProcessLookupError:
            pass
        ctx.note(fault="kill_process", target=self.p.target, pid=pid, action="SIGKILL", at=time.time())

    def stop(self, ctx: FaultContext) -> None:
        if ctx.pid(self.p.target) is None:
            started = time.monotonic()
            try:
                ctx.restart(self.p.target)
                ctx.note(
                    fault="kill_process",
                    target=self.p.target,
                    action="restarted",
                    at=time.time(),
                    restart_seconds=round(time.monotonic() - started, 2),
                )
            except Exception as exc:  # noqa: BLE001 - stop never raises; the journal has it
                ctx.note(fault="kill_process", target=self.p.target, action="restart failed", error=str(exc))
