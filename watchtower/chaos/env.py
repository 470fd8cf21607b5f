"""The shared environment every scenario of a chaos run uses: one embedded stack, one Spark job, one
background generator, one watchtower daemon (its collectors, the chaos rules, its real Slack notifier) and
the local Slack it pages (the page receiver). Started once, so `--all` pays Spark's start-up once.

Receivers start before senders (stack, Spark job, daemon, then traffic) and stop in reverse. The stack's
Redis is always its own (never REDIS_URL), so pausing it touches nothing else on the machine.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from secrets import token_hex
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from pipelines import failpoints
from pipelines.produce import Generator
from watchtower.chaos.detection import AlertsSeen
from watchtower.chaos.faults.crash_commit import failpoints_dir
from watchtower.chaos.pager import PageReceiver
from watchtower.config.env import ENV_PREFIX
from watchtower.core.types import Reading, Sample
from watchtower.kafka import admin as make_admin
from watchtower.kafka.offsets import GroupOffsets, group_offsets
from watchtower.settings import WatchtowerConfig
from watchtower.stack import Stack, resolve_endpoints
from watchtower.stack.process import free_port, spawn_watchtower, terminate, wait_until
from watchtower.stack.state import load_state

log = logging.getLogger(__name__)

# Short enough for scenarios of seconds: late events are 2 h old, "just inside" is 30 s old. The skew
# bound stays below the delay (PipelineConfig insists), or an admitted skewed event would poison it.
WATERMARK_DELAY_S = 60.0
MAX_FUTURE_SKEW_S = 30.0
# After a (re)start the daemon's history is empty: for this long a rule with no data keeps its alert as it
# was. With 0, a daemon restarted while an alert fires resolves it at its first evaluation (no reading yet)
# and pages it again a second later (daemon-kill-while-firing failed that way). The collectors read every
# second; 10 s covers the first readings of a daemon restarted on a loaded machine (5 s passed here).
STARTUP_GRACE_S = 10.0
# The page receiver's one channel: the notifier takes ids only; `#chaos` is its name.
CHAOS_CHANNEL = "CCHAOS"


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
        self.daemon: subprocess.Popen | None = None
        self.daemon_port = 0  # chosen at start, kept across restarts
        self.daemon_restarts = 0
        self.daemon_start_seconds: list[float] = []  # spawn until /api/v1/alerts answers, per start
        self._daemon_prefix = f"watchtower:chaos:{uuid.uuid4().hex[:8]}:"  # the run's alert store in Redis
        self._daemon_files: tuple[Path, dict[str, str]] | None = None
        self._http = httpx.Client(timeout=2.0)
        self._slack_token = f"xoxb-chaos-{token_hex(16)}"  # per run; only the daemon's environment has it
        self.pager = PageReceiver(self._slack_token, {CHAOS_CHANNEL: "#chaos"})
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
        args = ["pipeline", "spark", "--bootstrap", self.endpoints.bootstrap_servers]
        return spawn_watchtower(args, self.root / "spark.log", env)

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

    def _start_daemon(self) -> subprocess.Popen:
        """`watchtower run` with the config `daemon_config` wrote; returns once /api/v1/alerts answers (the
        daemon serves HTTP before its first evaluation restores the alert state from Redis)."""
        if self._daemon_files is None:
            self.daemon_port = free_port()
            doc, secrets = daemon_config(
                self.cfg,
                self.endpoints.bootstrap_servers,
                self.endpoints.redis_url,
                self.daemon_port,
                self.pager.api_url,
                self._slack_token,
                self._daemon_prefix,
            )
            path = self.root / "daemon.yaml"
            path.write_text(yaml.safe_dump(doc, sort_keys=False))
            self._daemon_files = path, secrets
        path, secrets = self._daemon_files
        # The parent's WATCHTOWER__* and REDIS_URL are in the file already (and would override the run's
        # own data_dir and Redis); only the secrets go through the environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX) and k not in _SHORTHANDS}
        env.update(secrets)
        started = time.monotonic()
        proc = spawn_watchtower(
            ["--config", str(path), "run"], self.root / "daemon.log", env, die_with_parent=True
        )
        try:
            wait_until(
                lambda: proc.poll() is not None or self._alerts_doc() is not None,
                60.0,
                "the watchtower daemon to answer /api/v1/alerts",
                interval=0.1,
            )
        except TimeoutError:
            terminate(proc)
            raise
        if proc.poll() is not None:
            raise RuntimeError(
                f"the watchtower daemon exited with code {proc.returncode}; see {self.root / 'daemon.log'}"
            )
        self.daemon_start_seconds.append(time.monotonic() - started)
        return proc

    @property
    def daemon_url(self) -> str:
        return f"http://127.0.0.1:{self.daemon_port}"

    # -- what faults touch ------------------------------------------------------------------------

    def pid(self, target: str) -> int | None:
        if target == "worker":
            pids = self.pool.pids() if self.pool is not None else []
            return pids[0] if pids else None
        if target == "spark":
            return self.spark.pid if self.spark is not None and self.spark.poll() is None else None
        if target == "daemon":
            return self.daemon.pid if self.daemon is not None and self.daemon.poll() is None else None
        info = load_state(Path(self.cfg.stack.state_dir))
        if info is None:
            return None
        part = info.broker if target == "broker" else info.redis if target == "redis" else None
        return None if part is None else part.pid

    def restart(self, target: str) -> None:
        if target == "daemon":
            if self.daemon is not None and self.daemon.poll() is None:
                return
            self.daemon = self._start_daemon()
            self.daemon_restarts += 1
            return
        if target != "spark":
            raise ValueError(
                f"cannot restart {target}: only the Spark job and the daemon are restarted by chaos runs"
            )
        if self.spark is not None and self.spark.poll() is None:
            return
        self.spark = self._start_spark()
        self.spark_restarts += 1

    # -- waiting ----------------------------------------------------------------------------------

    def _offsets(self) -> GroupOffsets | None:
        p = self.cfg.pipeline
        try:
            return group_offsets(self._admin, p.consumer_group, p.topic, p.partitions)
        except Exception:  # noqa: BLE001 - no commit yet, or the broker is paused
            return None

    def wait_drained(
        self,
        timeout: float,
        what: str,
        cancel: threading.Event | None = None,
        on_tick: Callable[[], None] | None = None,
    ) -> bool:
        """Until the job has committed everything the topic held when the wait began. Not "lag 0": with
        the background traffic running and batches of 2 s on a loaded machine, the end keeps moving and
        every partition is rarely caught up at one instant (the read-back timed out that way at load 15).
        `on_tick` runs every 0.5 s meanwhile (a chaos run keeps looking at the daemon's alerts)."""
        deadline = time.monotonic() + timeout
        target: dict[int, int] | None = None
        while time.monotonic() < deadline:
            if self.spark is not None and self.spark.poll() is not None:
                raise RuntimeError(
                    f"the Spark job exited with code {self.spark.returncode} waiting for {what}; see {self.root / 'spark.log'}"
                )
            offsets = self._offsets()
            if offsets is not None and target is None and offsets.high:
                target = dict(offsets.high)
            if offsets is not None and target is not None and offsets.caught_up(target):
                return True
            if cancel is not None and cancel.wait(0.5):
                return False
            if cancel is None:
                time.sleep(0.5)
            if on_tick is not None:
                on_tick()
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")

    def readings(self) -> list[Reading]:
        """The daemon's latest readings, scraped from its /metrics (empty while it does not answer)."""
        try:
            resp = self._http.get(f"{self.daemon_url}/metrics")
            resp.raise_for_status()
        except httpx.HTTPError:
            return []
        return [parse_metrics(resp.text, time.time())]

    def silence(self, rule: str, seconds: float = 3600.0) -> None:
        """Silence one rule in the run's alert store, which the daemon reads each cycle (its alerts still
        fire, nobody is paged)."""
        from watchtower.alerting.silences import Silence, parse_matchers
        from watchtower.alerting.store import AlertStore

        now = time.time()
        store = AlertStore.from_url(self.endpoints.redis_url, prefix=self._daemon_prefix)
        try:
            store.add_silence(
                Silence(
                    parse_matchers([f"rule={rule}"]),
                    starts_at=now,
                    ends_at=now + seconds,
                    comment="chaos run --silence",
                    created_by="chaos",
                )
            )
        finally:
            store.close()

    def _alerts_doc(self) -> dict[str, Any] | None:
        try:
            resp = self._http.get(f"{self.daemon_url}/api/v1/alerts")
            resp.raise_for_status()
            return resp.json()
        except (httpx.HTTPError, ValueError):
            return None

    def alerts_seen(self) -> AlertsSeen:
        """One GET /api/v1/alerts: the rules firing now (not reachable: the daemon is down or restarting)."""
        doc = self._alerts_doc()
        if doc is None:
            return AlertsSeen(time.time(), frozenset(), reachable=False)
        return alerts_seen(doc, time.time())

    def active_alerts(self) -> list[str]:
        """Rules with a pending or firing alert now, from /api/v1/alerts; raises DaemonUnreachable."""
        doc = self._alerts_doc()
        if doc is None:
            raise DaemonUnreachable(f"the watchtower daemon does not answer on {self.daemon_url}")
        return sorted({a["rule"] for a in doc.get("alerts", []) if a["state"] in ("pending", "firing")})

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
        terminate(self.spark, 90)
        if self.pool is not None:
            self.pool.stop()
        terminate(self.daemon, 10)  # SIGTERM (it flushes its outbox), SIGKILL after 10 s
        self._http.close()
        self.pager.stop()
        if not self.keep_stack:
            self.stack.down()


_SHORTHANDS = ("REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "WATCHTOWER_CONFIG")
_MASK = "**********"  # what model_dump(mode="json") makes of a SecretStr


class DaemonUnreachable(RuntimeError):
    """The chaos daemon did not answer over HTTP (killed, restarting or hung)."""


def daemon_config(
    cfg: WatchtowerConfig,
    bootstrap: str,
    redis_url: str,
    port: int,
    slack_api_url: str,
    slack_token: str,
    redis_prefix: str,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The chaos daemon's config file (a YAML-able mapping) and the environment variables carrying its
    secrets: the Redis URL, the Slack bot token and the Kafka secrets. Fast collectors (1 s; e2e percentiles
    over 15 s, outcome shares over 10 s, so recovery is measurable in seconds), the chaos rules, and a Slack
    notifier (Web API mode) whose `base_url` is the page receiver, with short timeouts and waits so a page
    refused for a while (page_errors) arrives within seconds of the refusals ending. Pure.

    Raises ValueError naming the field if a secret would end up in the file."""
    from watchtower.collectors.pipeline_outcomes import PipelineOutcomesConfig
    from watchtower.daemon.config import AlertingConfig

    base = cfg.daemon
    cols = base.collectors
    fast = {"interval": 1.0}
    collectors = cols.model_copy(
        update={
            "kafka_lag": cols.kafka_lag.model_copy(update=fast),
            "e2e_latency": cols.e2e_latency.model_copy(update={**fast, "window": 15.0}),
            "spark_progress": cols.spark_progress.model_copy(update=fast),
            "pipeline_outcomes": PipelineOutcomesConfig(interval=1.0, window=10.0),
            "dlq": cols.dlq.model_copy(update=fast),
            "canary": cols.canary.model_copy(update={"enabled": False}),
            # The faults this run records (watchtower_chaos_fault_active): annotations on every board.
            "chaos": cols.chaos.model_copy(update={"enabled": True, **fast}),
        }
    )
    daemon = base.model_copy(
        update={
            "collectors": collectors,
            "http": base.http.model_copy(update={"host": "127.0.0.1", "port": port}),
        }
    )
    alerting = AlertingConfig(
        rules=(Path(cfg.chaos.rules).resolve(),),
        interval=1.0,
        startup_grace=STARTUP_GRACE_S,
        redis_prefix=redis_prefix,
        poll_interval=0.2,
        backoff_base=0.5,
        backoff_cap=2.0,
    )
    pipeline = cfg.pipeline.model_copy(update={"data_dir": Path(cfg.pipeline.data_dir).resolve()})
    doc: dict[str, Any] = {
        "kafka": {"bootstrap_servers": bootstrap, "client": dict(cfg.kafka.client)},
        "pipeline": pipeline.model_dump(mode="json"),
        "daemon": daemon.model_dump(mode="json"),
        "alerting": {
            **alerting.model_dump(mode="json"),
            "notifiers": {"pager": slack_notifier(slack_api_url)},  # token: from the environment
        },
        "log_level": cfg.log_level,
        "log_format": "json",
    }
    _refuse_masked(doc, "")
    env = {"REDIS_URL": redis_url, "WATCHTOWER__ALERTING__NOTIFIERS__PAGER__TOKEN": slack_token}
    if cfg.kafka.sasl_password is not None:
        env["WATCHTOWER__KAFKA__SASL_PASSWORD"] = cfg.kafka.sasl_password.get_secret_value()
    if cfg.kafka.secrets:
        env["WATCHTOWER__KAFKA__SECRETS"] = json.dumps(
            {k: v.get_secret_value() for k, v in cfg.kafka.secrets.items()}
        )
    return doc, env


def slack_notifier(api_url: str) -> dict[str, Any]:
    """The chaos daemon's Slack notifier, without its token. A refused try is tried again after 0.25-1 s
    (429: after its Retry-After), at most 3 times within 3 s inside one send; then the dispatcher (0.5-2 s
    backoff) takes over."""
    return {
        "kind": "slack",
        "mode": "web_api",
        "channel": CHAOS_CHANNEL,
        "base_url": api_url,
        "timeout": 3.0,
        "max_attempts": 3,
        "max_inline_wait": 3.0,
        "backoff_base": 0.25,
        "backoff_cap": 1.0,
    }


def _refuse_masked(value: Any, path: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _refuse_masked(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _refuse_masked(v, f"{path}.{i}")
    elif value == _MASK:
        raise ValueError(
            f"{path}: a secret would be written masked into the chaos daemon's config; "
            "chaos runs pass secrets only through the daemon's environment (kafka.sasl_password, kafka.secrets)"
        )


def parse_metrics(text: str, at: float) -> Reading:
    """A /metrics scrape as one reading, samples named as the daemon's history names them: prometheus-client
    names a counter family without `_total` but keeps it on the samples, which is what rules and probes
    select. A `_created` sample (none today) is a client's bookkeeping, not a reading. Pure."""
    samples = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if family.type == "counter" and s.name.endswith("_created"):
                continue
            samples.append(Sample(s.name, tuple(sorted(s.labels.items())), float(s.value)))
    return Reading("metrics", at, tuple(samples))


def alerts_seen(doc: dict[str, Any], at: float) -> AlertsSeen:
    """The rules firing in one /api/v1/alerts answer. Pure."""
    firing = frozenset(a["rule"] for a in doc.get("alerts", []) if a.get("state") == "firing")
    return AlertsSeen(at, firing, reachable=True)
