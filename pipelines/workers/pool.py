"""N enricher worker processes, supervised: restart the ones that die, scale up and down at runtime.

    with WorkerPool(settings) as pool:   # or pool.start(n) ... pool.stop()
        pool.scale(4)
        ...

Each worker is `python -m pipelines.workers` (a process of its own, so a SIGKILL of one is a real
crash), configured through the environment (the settings may carry secrets, so not on the command
line). Workers run in their own session: a Ctrl-C reaches the supervisor only, which then stops them
in order. A worker whose supervisor disappears stops by itself.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path, PurePath
from typing import IO, Any

import orjson
from confluent_kafka import ConsumerGroupState, KafkaException
from confluent_kafka.admin import AdminClient
from pydantic import SecretStr

from pipelines.workers.enricher import WorkerSettings
from watchtower.config.models import KafkaConfig, WorkersConfig
from watchtower.kafka import admin as make_admin

log = logging.getLogger(__name__)

SETTINGS_ENV = "WATCHTOWER_WORKER_SETTINGS"
PARENT_ENV = "WATCHTOWER_WORKER_PARENT"
LOG_ENV = "WATCHTOWER_WORKER_LOG"  # "<level> <format>"
SUPERVISE_INTERVAL = 0.25
SETTLE_POLL = 0.2
SETTLE_FOR = 1.0  # seconds of Stable before a worker may leave


def _revealed(value: Any) -> Any:
    """orjson's fallback for what a model dump keeps as objects. A secret's value is written out: this JSON
    goes only into the worker's environment (never its command line or a log), and the worker reads it
    back into SecretStr fields, masked again everywhere else."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, PurePath):
        return str(value)
    raise TypeError(f"cannot hand {type(value).__name__} to a worker")


def settings_to_json(s: WorkerSettings) -> str:
    """The settings for a worker's environment, secrets included (kafka.sasl_password, every kafka.secrets value).

    Not `model_dump(mode="json")`: that writes each SecretStr as '**********'.
    """
    doc = asdict(s)
    doc["kafka"] = s.kafka.model_dump()
    doc["workers"] = s.workers.model_dump()
    return orjson.dumps(doc, default=_revealed).decode()


def settings_from_json(text: str) -> WorkerSettings:
    doc = orjson.loads(text)
    doc["kafka"] = KafkaConfig.model_validate(doc["kafka"])
    doc["workers"] = WorkersConfig.model_validate(doc["workers"])
    return WorkerSettings(**doc)


@dataclass
class _Slot:
    index: int
    process: subprocess.Popen
    started_at: float
    stopping: bool = False


class WorkerPool:
    """Supervises enricher processes. Thread-safe; `scale` and `stop` block until workers have exited."""

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        restart_delay: float = 1.0,
        log_path: Path | None = None,
        log_level: str = "INFO",
        log_format: str = "console",
        env: Mapping[str, str] | None = None,
    ):
        self.settings = settings
        self.env = dict(env or {})  # added to each worker's environment (a failpoints directory)
        self.restart_delay = restart_delay
        self.log_path = log_path
        self.log_spec = f"{log_level} {log_format}"
        self.restarts = 0
        self._slots: dict[int, _Slot] = {}
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._log_file: IO[bytes] | None = None
        self._admin_client: AdminClient | None = None

    # -- public API ---------------------------------------------------------------------------------

    def start(self, count: int | None = None) -> WorkerPool:
        """Start `count` workers (default: settings.workers.count) and the supervisor thread."""
        self._closing.clear()
        self.scale(self.settings.workers.count if count is None else count)
        if self._thread is None:
            self._thread = threading.Thread(target=self._supervise, name="worker-pool", daemon=True)
            self._thread.start()
        return self

    @property
    def size(self) -> int:
        with self._lock:
            return sum(not s.stopping for s in self._slots.values())

    def pids(self) -> list[int]:
        """The live workers' pids, by worker index."""
        with self._lock:
            return [s.process.pid for _, s in sorted(self._slots.items()) if not s.stopping]

    def scale(self, count: int, timeout: float = 30.0) -> None:
        """Run exactly `count` workers: start new ones, or stop the newest (they commit and leave the group,
        one at a time, each into a settled group: see `_wait_settled`)."""
        if count < 0:
            raise ValueError("worker count must be 0 or more")
        with self._lock:
            live = sorted(i for i, s in self._slots.items() if not s.stopping)
            for _ in range(len(live), count):
                free = next(i for i in range(count + len(self._slots) + 1) if i not in self._slots)
                self._spawn(free)
            leaving = [self._slots[i] for i in live[count:]]
            for slot in leaving:
                slot.stopping = True
        if leaving:
            log.info("scaling down", extra={"stopping": [s.index for s in leaving], "to": count})
            self._terminate(leaving, timeout)
            with self._lock:
                for slot in leaving:
                    self._slots.pop(slot.index, None)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every worker cleanly (SIGTERM, then SIGKILL after `timeout`) and the supervisor."""
        self._closing.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.scale(0, timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self._admin_client = None  # AdminClient has no close(); dropping it ends its threads

    def __enter__(self) -> WorkerPool:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------------------

    def _spawn(self, index: int) -> None:
        settings = replace(self.settings, name=f"enricher-{index}")
        env = {
            **os.environ,
            **self.env,
            SETTINGS_ENV: settings_to_json(settings),
            PARENT_ENV: str(os.getpid()),
            LOG_ENV: self.log_spec,
        }
        out: IO[bytes] | None = None
        if self.log_path is not None:
            if self._log_file is None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the pool's life
            out = self._log_file
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.workers"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            start_new_session=True,
        )
        self._slots[index] = _Slot(index, proc, time.monotonic())
        log.info("worker started", extra={"worker": index, "pid": proc.pid})

    def _terminate(self, slots: list[_Slot], timeout: float) -> None:
        """Stop `slots` one at a time, each into a settled group (see `_wait_settled` for why)."""
        for slot in slots:
            with self._lock:
                members = sum(1 for s in self._slots.values() if s.process.poll() is None)
            if members > 1:  # the last member leaving cannot strand anyone
                self._wait_settled(timeout)
            if slot.process.poll() is None:
                slot.process.send_signal(signal.SIGTERM)
            try:
                slot.process.wait(timeout)  # returns once close() has had its LeaveGroup answered
            except subprocess.TimeoutExpired:
                log.warning(
                    "worker ignored SIGTERM; killing it",
                    extra={"worker": slot.index, "pid": slot.process.pid},
                )
                slot.process.kill()
                slot.process.wait()

    def _wait_settled(self, timeout: float) -> bool:
        """Wait until the group has been Stable for SETTLE_FOR, so the next worker leaves a formed group.

        Why: the embedded broker (tansu 0.6) forgets to drop the group leader when the leader's LeaveGroup
        arrives while the group is rebalancing (its `leave` in the Forming state removes the member but keeps
        `state.leader`). Every later JoinGroup then names the departed member as leader, the survivors sync
        as followers, get REBALANCE_IN_PROGRESS and rejoin, forever: their partitions are never reassigned.
        Leaving all at once, or while a scale-up's rebalance was still running, hit it whenever the leader
        was among the leavers (docs/pipeline.md). A LeaveGroup in the Formed (Stable) state is handled right.
        Stable must hold for a while because a cooperative rebalance has a second round right after the
        first. tansu's DescribeGroups lists no members, so the state is all there is to go on.
        """
        admin = self._admin()
        deadline = time.monotonic() + timeout
        state, stable_since = None, None
        while time.monotonic() < deadline:
            try:
                desc = admin.describe_consumer_groups([self.settings.group], request_timeout=5)[
                    self.settings.group
                ].result()
                state = desc.state
            except KafkaException as exc:
                state = f"describe failed: {exc}"
            now = time.monotonic()
            if state == ConsumerGroupState.STABLE:
                stable_since = stable_since or now
                if now - stable_since >= SETTLE_FOR:
                    return True
            else:
                stable_since = None
            time.sleep(SETTLE_POLL)
        log.warning(
            "group did not settle before the next worker leaves",
            extra={"group": self.settings.group, "state": str(state)},
        )
        return False

    def _admin(self) -> AdminClient:
        if self._admin_client is None:
            self._admin_client = make_admin(self.settings.kafka, self.settings.bootstrap)
        return self._admin_client

    def _supervise(self) -> None:
        while not self._closing.wait(SUPERVISE_INTERVAL):
            with self._lock:
                for slot in list(self._slots.values()):
                    code = slot.process.poll()
                    if code is None or slot.stopping or self._closing.is_set():
                        continue
                    if time.monotonic() - slot.started_at < self.restart_delay:
                        continue  # a worker that dies at once is restarted at most every restart_delay
                    log.warning(
                        "worker exited; restarting it",
                        extra={"worker": slot.index, "pid": slot.process.pid, "code": code},
                    )
                    self.restarts += 1
                    self._spawn(slot.index)
