"""The shared environment every scenario of a chaos run uses: one embedded stack, one Spark job, one
background generator, one watchtower daemon (its collectors, the chaos rules, a webhook notifier) and the
local page receiver. Started once, so `--all` pays Spark's start-up once.

Receivers start before senders (stack, Spark job, daemon, then traffic) and stop in reverse. The stack's
Redis is always its own (never REDIS_URL), so pausing it touches nothing else on the machine.
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
import uuid
from pathlib import Path
from typing import Any

from pipelines import failpoints
from pipelines.produce import Generator
from watchtower.chaos.faults.crash_commit import failpoints_dir
from watchtower.chaos.pager import PageReceiver
from watchtower.kafka import admin as make_admin
from watchtower.kafka.offsets import group_offsets
from watchtower.settings import WatchtowerConfig
from watchtower.stack import Stack, resolve_endpoints
from watchtower.stack.state import load_state

log = logging.getLogger(__name__)

# Short enough for scenarios of seconds: late events are 2 h old, "just inside" is 30 s old. The skew
# bound stays below the delay (PipelineConfig insists), or an admitted skewed event would poison it.
WATERMARK_DELAY_S = 60.0
MAX_FUTURE_SKEW_S = 30.0


def chaos_config(cfg: WatchtowerConfig, root: Path) -> WatchtowerConfig:
    return cfg.model_copy(
        update={
            "stack": cfg.stack.model_copy(update={"state_dir": root / "stack"}),
            "redis": cfg.redis.model_copy(update={"url": None}),
            "pipeline": cfg.pipeline.model_copy(
                update={
                    "data_dir": root / "data",
                    "watermark_delay": WATERMARK_DELAY_S,
                    "max_future_skew": MAX_FUTURE_SKEW_S,
                    "trigger_interval": 0.5,
                }
            ),
        }
    )


class ChaosEnv:
    def __init__(self, config: WatchtowerConfig, root: Path, keep_stack: bool = False):
        self.root = Path(root)
        self.cfg = chaos_config(config, self.root)
        self.keep_stack = keep_stack
        self.stack = Stack(self.cfg)
        self.endpoints = None
        self.spark: subprocess.Popen | None = None
        self.daemon = None
        self.pager = PageReceiver()
        self.generator: Generator | None = None
        self._gen_thread: threading.Thread | None = None
        self._gen_stop = threading.Event()
        self._admin = None
        self.spark_restarts = 0
        self.pool = None
        self.workers_group = f"chaos-enricher-{uuid.uuid4().hex[:6]}"

    # -- start ------------------------------------------------------------------------------------

    def start(self, ready_timeout: float = 300.0) -> ChaosEnv:
        shutil.rmtree(self.cfg.pipeline.data_dir, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        self.stack.up()
        self.endpoints = resolve_endpoints(self.cfg)
        self._admin = make_admin(self.cfg.kafka, self.endpoints.bootstrap_servers)
        self.pager.start()
        self.spark = self._start_spark()
        self.daemon = self._start_daemon()
        self.pool = self._start_workers()
        rate = self.cfg.chaos.background_rate
        self.generator = Generator(
            self.cfg.generator.model_copy(
                update={
                    "rate": max(rate, 1.0),
                    "duplicate_ratio": 0.0,
                    "malformed_ratio": 0.0,
                    "late_ratio": 0.0,
                }
            ),
            self.endpoints.bootstrap_servers,
            kafka=self.cfg.kafka,
            topic=self.cfg.pipeline.topic,
            max_event_bytes=self.cfg.pipeline.max_event_bytes,
            track_offsets=True,
        )
        self.generator.finish()  # markers: the job's first batch, so its start-up is over before traffic
        self.wait_drained(ready_timeout, "the Spark job to start")
        if rate > 0:
            self._gen_thread = threading.Thread(target=self._produce, name="chaos-background", daemon=True)
            self._gen_thread.start()
        return self

    def _produce(self) -> None:
        try:
            self.generator.run(stop_event=self._gen_stop, finish=False)
        except Exception:  # noqa: BLE001 - the run's verdicts then show missing traffic
            log.exception("background generator failed")

    def _start_spark(self) -> subprocess.Popen:
        env = dict(os.environ)
        p = self.cfg.pipeline
        env.update(
            {
                "WATCHTOWER__PIPELINE__DATA_DIR": str(p.data_dir),
                "WATCHTOWER__PIPELINE__WATERMARK_DELAY": str(p.watermark_delay),
                "WATCHTOWER__PIPELINE__MAX_FUTURE_SKEW": str(p.max_future_skew),
                "WATCHTOWER__PIPELINE__TRIGGER_INTERVAL": str(p.trigger_interval),
                "WATCHTOWER__STACK__STATE_DIR": str(self.cfg.stack.state_dir),
                failpoints.ENV: str(failpoints_dir(p.data_dir, "spark")),
                "REDIS_URL": self.endpoints.redis_url,
                "PYSPARK_PYTHON": env.get("PYSPARK_PYTHON", sys.executable),
            }
        )
        out = open(self.root / "spark.log", "ab")  # noqa: SIM115 - owned by the child
        cmd = [
            sys.executable,
            "-m",
            "watchtower",
            "pipeline",
            "spark",
            "--bootstrap",
            self.endpoints.bootstrap_servers,
        ]
        return subprocess.Popen(
            cmd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _start_workers(self):
        from pipelines.workers.enricher import WorkerSettings
        from pipelines.workers.pool import WorkerPool

        p = self.cfg.pipeline
        settings = WorkerSettings(
            bootstrap=self.endpoints.bootstrap_servers,
            redis_url=self.endpoints.redis_url,
            topic=p.topic,
            group=self.workers_group,
            kafka=self.cfg.kafka,
            # The config's own timeouts (default 10 s session, 30 s poll interval): with the tests' 6 s / 10 s a
            # 15 s Redis pause made both workers exceed max.poll.interval and leave the group, and on tansu they
            # were not given partitions again for minutes (seen in a chaos run; see docs/chaos.md).
            workers=self.cfg.workers,
            max_event_bytes=p.max_event_bytes,
        )
        fp = {failpoints.ENV: str(failpoints_dir(p.data_dir, "worker"))}
        return WorkerPool(settings, log_path=self.root / "workers.log", env=fp).start(2)

    def _start_daemon(self):
        from watchtower.collectors.pipeline_outcomes import PipelineOutcomesConfig
        from watchtower.core.history import History
        from watchtower.daemon.config import AlertingConfig
        from watchtower.daemon.daemon import Daemon, build_alerting, build_collectors
        from watchtower.notify.registry import WebhookNotifierConfig

        base = self.cfg.daemon
        cols = base.collectors
        fast = {"interval": 1.0}
        collectors_cfg = cols.model_copy(
            update={
                "kafka_lag": cols.kafka_lag.model_copy(update=fast),
                # percentiles over 15 s, not 5 min: recovery after a fault is then measurable in seconds
                "e2e_latency": cols.e2e_latency.model_copy(update={**fast, "window": 15.0}),
                "spark_progress": cols.spark_progress.model_copy(update=fast),
                "pipeline_outcomes": PipelineOutcomesConfig(interval=1.0, window=10.0),
                "dlq": cols.dlq.model_copy(update=fast),
                "canary": cols.canary.model_copy(update={"enabled": False}),
            }
        )
        daemon_cfg = base.model_copy(
            update={"collectors": collectors_cfg, "http": base.http.model_copy(update={"port": 0})}
        )
        e = self.endpoints
        collectors = build_collectors(
            daemon_cfg, self.cfg.kafka, e.bootstrap_servers, e.redis_url, self.cfg.pipeline
        )
        alerting_cfg = AlertingConfig(
            rules=(Path(self.cfg.chaos.rules),),
            interval=1.0,
            startup_grace=0.0,
            redis_prefix=f"watchtower:chaos:{uuid.uuid4().hex[:8]}:",
            poll_interval=0.2,
            backoff_base=0.5,
            backoff_cap=2.0,
            notifiers={"pager": WebhookNotifierConfig(kind="webhook", url=self.pager.url, timeout=2.0)},
        )
        history = History(daemon_cfg.history_size)
        alerting = build_alerting(alerting_cfg, history, e.redis_url)
        return Daemon(collectors, daemon_cfg, history=history, alerting=alerting).start()

    # -- what faults touch ------------------------------------------------------------------------

    def pid(self, target: str) -> int | None:
        if target == "worker":
            pids = self.pool.pids() if self.pool is not None else []
            return pids[0] if pids else None
        if target == "spark":
            return self.spark.pid if self.spark is not None and self.spark.poll() is None else None
        info = load_state(Path(self.cfg.stack.state_dir))
        if info is None:
            return None
        part = info.broker if target == "broker" else info.redis if target == "redis" else None
        return None if part is None else part.pid

    def restart(self, target: str) -> None:
        if target != "spark":
            raise ValueError(f"cannot restart {target}: only the Spark job is restarted by chaos runs")
        if self.spark is not None and self.spark.poll() is None:
            return
        self.spark = self._start_spark()
        self.spark_restarts += 1

    # -- waiting ----------------------------------------------------------------------------------

    def drained(self) -> bool:
        p = self.cfg.pipeline
        try:
            return group_offsets(self._admin, p.consumer_group, p.topic, p.partitions).drained
        except Exception:  # noqa: BLE001 - no commit yet, or the broker is paused
            return False

    def wait_drained(self, timeout: float, what: str, cancel: threading.Event | None = None) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.spark is not None and self.spark.poll() is not None:
                raise RuntimeError(
                    f"the Spark job exited with code {self.spark.returncode} waiting for {what}; see {self.root / 'spark.log'}"
                )
            if self.drained():
                return True
            if cancel is not None and cancel.wait(0.5):
                return False
            if cancel is None:
                time.sleep(0.5)
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")

    def readings(self) -> list[Any]:
        return list(self.daemon.history.snapshot().readings.values()) if self.daemon else []

    def silence(self, rule: str, seconds: float = 3600.0) -> None:
        """Silence one rule in the run's alert store (its alerts still fire, nobody is paged)."""
        from watchtower.alerting.silences import Silence, parse_matchers

        now = time.time()
        self.daemon.alerting.store.add_silence(
            Silence(
                parse_matchers([f"rule={rule}"]),
                starts_at=now,
                ends_at=now + seconds,
                comment="chaos run --silence",
                created_by="chaos",
            )
        )

    def active_alerts(self) -> list[str]:
        """Rules with a pending or firing alert now (what /api/v1/alerts lists)."""
        if self.daemon is None or self.daemon.alerting is None:
            return []
        return sorted(
            {
                a["rule"]
                for a in self.daemon.alerting.alerts_status()["alerts"]
                if a["state"] in ("pending", "firing")
            }
        )

    def kafka_conf(self) -> dict[str, Any]:
        return self.cfg.kafka.librdkafka(self.endpoints.bootstrap_servers)

    # -- stop -------------------------------------------------------------------------------------

    def stop(self) -> None:
        self._gen_stop.set()
        if self._gen_thread is not None:
            self._gen_thread.join(30)
        if self.generator is not None:
            try:
                self.generator.close()
            except Exception:  # noqa: BLE001 - the broker may be gone already
                log.warning("background generator did not flush", exc_info=True)
        if self.spark is not None and self.spark.poll() is None:
            self.spark.send_signal(signal.SIGTERM)
            try:
                self.spark.wait(90)
            except subprocess.TimeoutExpired:
                self.spark.kill()
                self.spark.wait()
        if self.pool is not None:
            self.pool.stop()
        if self.daemon is not None:
            self.daemon.stop()
        self.pager.stop()
        if not self.keep_stack:
            self.stack.down()
