"""crash_between_write_and_commit: the process dies after a batch reached every sink and before its
offsets were committed, so the broker (or Spark's offset log) hands the same records over again.

Aimed, not timed: the fault arms the `after-write-before-commit` failpoint (`pipelines.failpoints`) with
the key prefix of this step's users, then injects `count` valid events for them. The first batch that
holds one of them is written (Spark: DLQ topic, Redis, Delta; a worker: its Redis MULTI/EXEC) and the
process SIGKILLs itself before Spark writes its commit log / the worker commits to Kafka. The Spark job is
then restarted (the pool restarts a worker by itself) and replays that batch.

What must hold: every injected event is one `events` row (the conservation verdict: a replay that wrote
again shows up as `extra`), and for `target: worker` each user's count in the workers' Redis state equals
what was sent. `verify` also names the batch that was replayed and how long the restarted job took to
commit it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Literal

from pydantic import Field

from pipelines import failpoints
from pipelines.events import encode, new_event
from watchtower.chaos.faults.base import FaultContext, FaultError, Params, register
from watchtower.chaos.faults.kill_worker import worker_count_problems
from watchtower.core.units import Duration

FAILPOINT = failpoints.AFTER_WRITE_BEFORE_COMMIT


def failpoints_dir(data_dir: str | os.PathLike[str], target: str) -> Path:
    """Where the chaos run arms failpoints for `target` (spark | worker): one directory each, so the
    workers (which read the same topic) never take the Spark job's crash, nor the reverse."""
    return Path(data_dir) / "failpoints" / target


class CrashParams(Params):
    target: Literal["spark", "worker"] = "spark"
    count: int = Field(default=300, ge=1, description="valid events injected for the crashed batch")
    users: int = Field(default=10, ge=1)
    crash_within: Duration = Field(default=60.0, gt=0, description="the process must hit the failpoint")
    verify_within: Duration = Field(default=90.0, gt=0)


def _source_end(offsets_file: Path) -> dict[int, int]:
    """The end offsets of a Spark batch, from its offset-log file (last line: the source's offset)."""
    doc = json.loads(offsets_file.read_text().strip().splitlines()[-1])
    return {int(p): o for per_topic in doc.values() for p, o in per_topic.items()}


def _uncommitted_batch(checkpoint: Path) -> int | None:
    """The newest batch in the offset log without a commit: the one a crash left to replay."""
    planned = [int(p.name) for p in (checkpoint / "offsets").iterdir() if p.name.isdigit()]
    if not planned:
        return None
    newest = max(planned)
    return None if (checkpoint / "commits" / str(newest)).exists() else newest


@register("crash_between_write_and_commit", CrashParams)
class CrashBetweenWriteAndCommit:
    def __init__(self, p: CrashParams):
        self.p = p
        self.dir: Path | None = None
        self.expected: dict[str, int] = {}
        self.offsets: list[tuple[int, int]] = []  # injected (partition, offset), for the replayed range
        self.batch: int | None = None
        self.restarted_at: float | None = None

    def start(self, ctx: FaultContext) -> None:
        pid = ctx.pid(self.p.target)
        if pid is None:
            raise FaultError(f"crash_between_write_and_commit: {self.p.target} is not running")
        tag = f"{int(time.time() * 1000) % 10**8}"
        prefix = f"chaos-crash-{tag}-"
        self.dir = failpoints_dir(ctx.pipeline.data_dir, self.p.target)
        failpoints.arm(self.dir, FAILPOINT, prefix)
        before = len(ctx.injector.expected)
        for i in range(self.p.count):
            user = f"{prefix}{i % self.p.users}"
            ev = new_event(user, 1.0, "created", ctx.now_ms())
            ctx.injector.send(encode(ev), user.encode(), "valid", ("events",), event_id=ev["event_id"])
            self.expected[user] = self.expected.get(user, 0) + 1
        ctx.injector.flush()
        self.offsets = [(e.partition, e.offset) for e in ctx.injector.expected[before:]]
        armed_at = time.monotonic()
        deadline = armed_at + self.p.crash_within
        while failpoints.armed(self.dir, FAILPOINT):
            if time.monotonic() > deadline:
                self._disarm()
                raise FaultError(
                    f"crash_between_write_and_commit: {self.p.target} did not reach the failpoint within "
                    f"{self.p.crash_within:.0f}s (is {failpoints.ENV} passed to it?)"
                )
            time.sleep(0.05)
        if self.p.target == "spark":
            self._restart_spark(ctx, pid, deadline)
        ctx.note(
            fault="crash_between_write_and_commit",
            target=self.p.target,
            action="SIGKILL at the failpoint",
            hit_after_s=round(time.monotonic() - armed_at, 2),
        )

    def _restart_spark(self, ctx: FaultContext, pid: int, deadline: float) -> None:
        while ctx.pid("spark") is not None:  # the failpoint fired: the driver is going down
            if time.monotonic() > deadline:
                raise FaultError("crash_between_write_and_commit: the Spark driver did not die")
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # its JVM, as a crashed host would lose it too
        self.batch = _uncommitted_batch(self._checkpoint(ctx))
        self.restarted_at = time.time()
        ctx.restart("spark")

    @staticmethod
    def _checkpoint(ctx: FaultContext) -> Path:
        return Path(ctx.pipeline.data_dir) / "checkpoints" / "spark"

    def _disarm(self) -> None:
        if self.dir is not None:
            with contextlib.suppress(FileNotFoundError):
                (self.dir / FAILPOINT).unlink()

    def stop(self, ctx: FaultContext) -> None:
        self._disarm()
        if self.p.target == "spark" and ctx.pid("spark") is None:
            try:
                ctx.restart("spark")
            except Exception as exc:  # noqa: BLE001 - stop never raises; the journal has it
                ctx.note(fault="crash_between_write_and_commit", action="restart failed", error=str(exc))

    def verify(self, ctx: FaultContext) -> list[str]:
        if self.p.target == "worker":
            return worker_count_problems(
                ctx, self.expected, self.p.verify_within, "crash_between_write_and_commit"
            )
        return self._verify_replay(ctx)

    def _verify_replay(self, ctx: FaultContext) -> list[str]:
        """The batch the crash left uncommitted was replayed and committed; how long that took."""
        if self.batch is None:
            return ["the Spark crash left no uncommitted batch: the failpoint fired outside a batch"]
        cp = self._checkpoint(ctx)
        commit = cp / "commits" / str(self.batch)
        deadline = time.monotonic() + self.p.verify_within
        while not commit.exists():
            if time.monotonic() > deadline:
                return [f"the restarted Spark job never committed the replayed batch {self.batch}"]
            time.sleep(0.5)
        end = _source_end(cp / "offsets" / str(self.batch))
        prev = cp / "offsets" / str(self.batch - 1)
        start = _source_end(prev) if prev.exists() else {}
        replayed = sum(1 for p, o in self.offsets if start.get(p, 0) <= o < end.get(p, 0))
        ctx.note(
            fault="crash_between_write_and_commit",
            target="spark",
            replayed_batch=self.batch,
            injected_in_replayed_batch=replayed,
            injected=len(self.offsets),
            restart_to_commit_s=round(commit.stat().st_mtime - (self.restarted_at or 0), 2),
        )
        if replayed == 0:
            return [f"the replayed batch {self.batch} held none of the injected events"]
        return []
