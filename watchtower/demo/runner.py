"""Runs the demo: stack, Spark job, workers and generator, then drains, stops everything and accounts.

Order matters. Receivers start before senders (Spark job and workers, then the generator), and stop in
reverse: the generator stops and writes its end markers, the demo waits until the Spark job's group has
committed every offset (the drain), then stops the Spark job, the workers and the stack. Ctrl-C once
starts that orderly stop; twice stops at once.

With the embedded stack the demo runs its own broker and Redis under `<state_dir>/demo`, so counts
start from an empty topic. Against a configured cluster it uses the configured topic as is: give it a
dedicated topic (WATCHTOWER__PIPELINE__TOPIC) or the report counts what was there before.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis

from pipelines.produce import Generator
from pipelines.workers.enricher import WorkerSettings
from pipelines.workers.pool import WorkerPool
from watchtower.chaos.readback import read_found
from watchtower.chaos.verdict import Conservation, judge
from watchtower.collectors.registry import REGISTRY
from watchtower.daemon.config import DaemonConfig
from watchtower.daemon.daemon import Daemon, build_collectors
from watchtower.demo.accounting import Accounting, account, expected_outcomes
from watchtower.demo.readings import (
    BatchesTable,
    last_progress,
    recent_latency,
    watchtower_view,
)
from watchtower.kafka import admin as make_admin
from watchtower.kafka.offsets import group_offsets
from watchtower.settings import WatchtowerConfig
from watchtower.stack import Stack, resolve_endpoints
from watchtower.stack.process import spawn_watchtower

log = logging.getLogger(__name__)


@dataclass
class DemoOptions:
    duration: float | None = None  # None: until Ctrl-C
    rate: float | None = None
    workers: int | None = None
    report: Path | None = None
    drain_timeout: float = 180.0
    startup_timeout: float = 300.0
    keep_stack: bool = False
    faults: bool = True  # mix in duplicates, malformed and late events unless the config sets its own
    autoscale: bool = False  # step the load up and down; the daemon scales the workers (demo/autoscale.py)


DEMO_FAULTS = {"duplicate_ratio": 0.01, "malformed_ratio": 0.005, "late_ratio": 0.005}


@dataclass
class DemoState:
    """What the display shows; refreshed by `DemoRun.poll`."""

    phase: str = "starting"
    started: float = field(default_factory=time.monotonic)
    sent: int = 0
    send_rate: float = 0.0
    delivered: int = 0
    totals: Any = None
    progress: dict[str, str] = field(default_factory=dict)
    latency: dict[str, float] = field(default_factory=dict)
    lag: dict[str, int] = field(default_factory=dict)
    workers: int = 0
    watch: dict[str, Any] = field(default_factory=dict)  # what the watchtower daemon measures
    daemon_url: str = ""
    errors: list[str] = field(default_factory=list)
    scaling: dict[str, Any] = field(default_factory=dict)  # --autoscale: the controller's latest decision
    target_rate: float | None = None  # --autoscale: the rate of the current load phase


def demo_config(cfg: WatchtowerConfig) -> WatchtowerConfig:
    """The demo's own state and data directories (and its own embedded stack) under <state_dir>/demo."""
    root = Path(cfg.stack.state_dir) / "demo"
    return cfg.model_copy(
        update={
            "stack": cfg.stack.model_copy(update={"state_dir": root / "stack"}),
            "pipeline": cfg.pipeline.model_copy(update={"data_dir": root / "data"}),
        }
    )


class DemoRun:
    def __init__(self, config: WatchtowerConfig, options: DemoOptions):
        self.cfg = demo_config(config)
        self.opts = options
        self.root = Path(self.cfg.stack.state_dir).parent
        self.state = DemoState()
        self.stop_producing = threading.Event()  # first Ctrl-C / --duration: stop producing, then drain
        self.abort = threading.Event()  # a component failed or a second Ctrl-C: no drain
        self._stack = Stack(self.cfg)
        self._spark: subprocess.Popen | None = None
        self._pool: WorkerPool | None = None
        self._generator: Generator | None = None
        self._gen_thread: threading.Thread | None = None
        self._manifest = None
        self._admin = None
        self._redis: redis.Redis | None = None
        self._daemon = None
        self._follower = None
        self.canaries = 0
        self.readback: Conservation | None = None
        self._batches = BatchesTable(Path(self.cfg.pipeline.data_dir) / "delta" / "batches")
        self.endpoints = None

    # -- start ----------------------------------------------------------------------------------

    def start(self) -> None:
        p = self.cfg.pipeline
        shutil.rmtree(p.data_dir, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        self.state.phase = "stack"
        self._stack.up()
        self.endpoints = resolve_endpoints(self.cfg)
        self._admin = make_admin(self.cfg.kafka, self.endpoints.bootstrap_servers)
        self._redis = redis.Redis.from_url(self.endpoints.redis_url)
        self.state.phase = "spark"
        self._spark = self._start_spark()
        self.state.phase = "watchtower"
        self._daemon = self._start_daemon()
        self.state.phase = "workers"
        settings = WorkerSettings(
            bootstrap=self.endpoints.bootstrap_servers,
            redis_url=self.endpoints.redis_url,
            topic=p.topic,
            group=self.cfg.workers.group,
            kafka=self.cfg.kafka,
            workers=self.cfg.workers,
            max_event_bytes=p.max_event_bytes,
        )
        if self.opts.autoscale:
            from watchtower.demo import autoscale
            from watchtower.scale.local_pool import PoolFollower

            settings.max_rate = autoscale.worker_max_rate(self.opts.rate or autoscale.DEFAULT_BASE_RATE)
            self._pool = WorkerPool(settings, log_path=self.root / "workers.log").start(1)
            self._follower = PoolFollower(autoscale.TARGET, self._pool, self._redis).start()
        else:
            self._pool = WorkerPool(settings, log_path=self.root / "workers.log").start(self.opts.workers)
        g = self.cfg.generator
        update: dict[str, Any] = {} if self.opts.rate is None else {"rate": self.opts.rate}
        if self.opts.faults and not (g.duplicate_ratio or g.malformed_ratio or g.late_ratio):
            update.update(DEMO_FAULTS)
        gen_cfg = g.model_copy(update=update)
        self._generator = Generator(
            gen_cfg,
            self.endpoints.bootstrap_servers,
            kafka=self.cfg.kafka,
            topic=p.topic,
            max_event_bytes=p.max_event_bytes,
            track_offsets=True,  # the read-back verdict finds every record by (partition, offset)
        )
        self._gen_thread = threading.Thread(target=self._produce, name="generator", daemon=True)
        self._gen_thread.start()

    def _start_spark(self) -> subprocess.Popen:
        env = dict(os.environ)
        env.update(
            {
                "WATCHTOWER__PIPELINE__DATA_DIR": str(self.cfg.pipeline.data_dir),
                "WATCHTOWER__STACK__STATE_DIR": str(self.cfg.stack.state_dir),
                "REDIS_URL": self.endpoints.redis_url,  # env, not argv: a password must not show in `ps`
                "PYSPARK_PYTHON": env.get("PYSPARK_PYTHON", sys.executable),
            }
        )
        # Own session: the terminal's Ctrl-C reaches the demo, which then stops the job in order.
        args = ["pipeline", "spark", "--bootstrap", self.endpoints.bootstrap_servers]
        return spawn_watchtower(args, self.root / "spark.log", env)

    def _start_daemon(self):
        """The measuring daemon, in-process, with the canary on and short intervals for a lively panel.

        Each collector kind says what it runs with under the demo (`CollectorKind.demo`)."""
        base: DaemonConfig = self.cfg.daemon
        daemon_cfg = base.model_copy(update={"collectors": REGISTRY.demo_sections(base.collectors)})
        e = self.endpoints
        collectors = build_collectors(
            daemon_cfg, self.cfg.kafka, e.bootstrap_servers, e.redis_url, self.cfg.pipeline
        )
        history = scaling = None
        if self.opts.autoscale:
            from watchtower.core.history import History
            from watchtower.demo import autoscale
            from watchtower.scale.controller import ScalingController

            p = self.cfg.pipeline
            history = History(daemon_cfg.history_size)
            scaling = ScalingController(
                autoscale.scaling_config(self.cfg.workers.group, p.topic, e.redis_url, p.partitions),
                history,
                redis_url=e.redis_url,
            )
        try:
            daemon = Daemon(collectors, daemon_cfg, history=history, scaling=scaling).start()
        except OSError:  # the configured port is taken (another watchtower?): any free port will do
            http = daemon_cfg.http.model_copy(update={"port": 0})
            daemon = Daemon(
                collectors, daemon_cfg.model_copy(update={"http": http}), history=history, scaling=scaling
            ).start()
        self.state.daemon_url = daemon.http.url
        return daemon

    def _produce(self) -> None:
        try:
            # Warm-up: one marker per partition (control events, counted in the manifest), then wait until
            # the Spark job has committed them, so its start-up time is not measured as event latency.
            self._generator.finish()
            self.state.phase = "waiting for the Spark job"
            if not self._wait_drained(self.opts.startup_timeout, self.stop_producing):
                if not self.stop_producing.is_set():
                    self.state.errors.append(
                        f"the Spark job did not start within {self.opts.startup_timeout:.0f}s"
                    )
                    self.abort.set()
                return
            self.state.phase = "producing"
            if self.opts.autoscale:
                from watchtower.demo import autoscale

                profile = autoscale.phases(self.opts.rate or autoscale.DEFAULT_BASE_RATE, self.opts.duration)
                self._manifest = autoscale.run_phases(
                    self._generator,
                    profile,
                    self.stop_producing,
                    on_phase=lambda r: setattr(self.state, "target_rate", r),
                )
                return
            self._manifest = self._generator.run(duration=self.opts.duration, stop_event=self.stop_producing)
        except Exception as exc:  # noqa: BLE001 - shown to the user, the demo then stops
            self.state.errors.append(f"generator: {exc}")
            self.abort.set()

    # -- poll -----------------------------------------------------------------------------------

    def poll(self) -> None:
        s = self.state
        if self._generator is not None:
            m = self._generator.manifest
            s.sent, s.delivered = m.sent, m.delivered
            s.send_rate = m.send_rate
        try:
            s.totals = self._batches.totals()
        except Exception as exc:  # noqa: BLE001 - a half-written table is read again next time
            log.debug("batches table not readable yet: %s", exc)
        if self._redis is not None:
            try:
                s.progress = last_progress(self._redis, self.cfg.pipeline.progress_stream)
                s.latency = recent_latency(self._redis)
            except redis.RedisError as exc:
                log.debug("redis not readable: %s", exc)
        if self._admin is not None:
            p = self.cfg.pipeline
            for name, group in (("spark", p.consumer_group), ("workers", self.cfg.workers.group)):
                try:
                    s.lag[name] = group_offsets(self._admin, group, p.topic, p.partitions).lag
                except Exception as exc:  # noqa: BLE001
                    log.debug("offsets of %s not readable: %s", group, exc)
        s.workers = self._pool.size if self._pool else 0
        if self._daemon is not None:
            s.watch = watchtower_view(self._daemon.history.snapshot(), self._daemon.runner.health())
            if self._daemon.scaling is not None:
                s.scaling = next(iter(self._daemon.scaling.status()["targets"].values()), {}) or {}
        if (
            self._spark is not None
            and self._spark.poll() is not None
            and s.phase not in ("stopping", "stopped")
        ):
            if not self.abort.is_set():
                s.errors.append(
                    f"the Spark job exited with code {self._spark.returncode}; see {self.root / 'spark.log'}"
                )
            self.abort.set()

    def producing(self) -> bool:
        alive = self._gen_thread is not None and self._gen_thread.is_alive()
        return alive and not self.stop_producing.is_set() and not self.abort.is_set()

    # -- stop -----------------------------------------------------------------------------------

    def drain(self, on_tick=None) -> bool:
        """Stop the generator (it writes its markers), then wait for the Spark job to commit everything."""
        self.state.phase = "draining"
        self.stop_producing.set()
        if self._gen_thread is not None:
            self._gen_thread.join()
        # The canary writes into the same topic: stop it before draining so its count is final.
        self._stop_daemon()
        return self._wait_drained(self.opts.drain_timeout, self.abort, on_tick)

    def _wait_drained(self, timeout: float, cancel: threading.Event, on_tick=None) -> bool:
        """Wait until the Spark job's group has committed every partition's end offset."""
        p = self.cfg.pipeline
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._spark is not None and self._spark.poll() is not None:
                return False
            try:
                if group_offsets(self._admin, p.consumer_group, p.topic, p.partitions).drained:
                    return True
            except Exception as exc:  # noqa: BLE001 - the group does not exist until the first commit
                log.debug("offsets not readable: %s", exc)
            if on_tick:
                on_tick()
            if cancel.wait(0.5) or self.abort.is_set():
                return False
        return False

    def stop(self) -> None:
        self.state.phase = "stopping"
        self.stop_producing.set()
        if self._spark is not None and self._spark.poll() is None:
            self._spark.send_signal(signal.SIGTERM)
            try:
                self._spark.wait(90)
            except subprocess.TimeoutExpired:
                self._spark.kill()
                self._spark.wait()
        if self._follower is not None:
            self._follower.stop()
        if self._pool is not None:
            self._pool.stop()
        self._stop_daemon()
        if self._gen_thread is not None:
            self._gen_thread.join(30)
        if self._generator is not None:
            self._generator.close()
        self.poll()
        self._read_back()
        if self._redis is not None:
            self._redis.close()
        if not self.opts.keep_stack:
            self._stack.down()
        self.state.phase = "stopped"

    def _read_back(self) -> None:
        """The conservation verdict from what the sinks hold (Spark stopped: Delta has every batch; the
        broker is still up for the DLQ topic). Every generator record, markers included, is expected;
        the daemon's canaries are control events and leave no row, so any other row is an anomaly."""
        if self._manifest is None or self.endpoints is None:
            return
        p = self.cfg.pipeline
        try:
            found = read_found(
                Path(p.data_dir) / "delta",
                p.topic,
                self.cfg.kafka.librdkafka(self.endpoints.bootstrap_servers),
                p.dlq_topic,
            )
            self.readback = judge(expected_outcomes(self._manifest.records), found, complete=True)
        except Exception as exc:  # noqa: BLE001 - reported; the demo then fails its verdict
            self.state.errors.append(f"read-back: {exc}")

    def _stop_daemon(self) -> None:
        if self._daemon is None:
            return
        self.poll()  # keep its last readings on the panel
        self._daemon.stop()
        self.canaries = sum(getattr(c, "sent", 0) for c in self._daemon.collectors if c.name == "canary")
        self._daemon = None

    def accounting(self) -> Accounting | None:
        if self._manifest is None or self.state.totals is None:
            return None
        m = self._manifest
        return account(m.counts, m.delivered, m.failed, self.state.totals, canaries=self.canaries)

    def report(self, drained: bool) -> dict[str, Any]:
        acc = self.accounting()
        elapsed = time.monotonic() - self.state.started
        doc: dict[str, Any] = {
            "drained": drained,
            "elapsed_s": round(elapsed, 1),
            "generator": self._manifest.as_dict() if self._manifest else None,
            "latency_ms": self.state.latency,
            "errors": self.state.errors,
        }
        if self.opts.autoscale:
            sc = self.state.scaling
            doc["scaling"] = {
                k: sc.get(k) for k in ("current", "desired", "wanted", "actions", "vetoes", "recent_actions")
            }
        if acc is not None:
            doc.update(acc.as_dict())
        doc["readback"] = self.readback.as_dict() if self.readback is not None else None
        # The verdict is the read-back; the job's own counters (above) add up by construction.
        delivered = acc is not None and acc.checks.get("every_record_delivered", False)
        doc["adds_up"] = bool(self.readback is not None and self.readback.ok and delivered and drained)
        if self.opts.report is not None:
            self.opts.report.parent.mkdir(parents=True, exist_ok=True)
            self.opts.report.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        return doc
