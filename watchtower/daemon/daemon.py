"""The measuring daemon: collectors on a schedule, their history, alert evaluation, and the HTTP/tracing edges.

`Daemon.start()` returns at once (HTTP server first, then the collectors, so the first scrape already
answers, then the alert evaluator and its dispatcher); `stop()` undoes it in reverse and flushes traces. `serve(stop_event)` is the blocking loop the
CLI uses: it waits on the event, so SIGTERM/SIGINT stop it promptly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from prometheus_client import CollectorRegistry

from watchtower.alerting.store import AlertStore
from watchtower.collectors.base import BuildContext, Collector
from watchtower.collectors.registry import REGISTRY, CollectorKinds
from watchtower.config.flink import FlinkConfig
from watchtower.config.models import KafkaConfig, PipelineConfig
from watchtower.config.yaml_source import ConfigError
from watchtower.core.history import History
from watchtower.core.leader import LeaderGate
from watchtower.core.signal import ReadingSignal
from watchtower.daemon.config import AlertingConfig, DaemonConfig
from watchtower.daemon.evaluation import AlertEvaluator
from watchtower.daemon.runner import CollectorRunner
from watchtower.daemon.tracing import build_tracer_provider
from watchtower.exposition.alerting import AlertingCollector
from watchtower.exposition.http import HttpServer
from watchtower.exposition.leader import LeaderCollector, LeaseStatus
from watchtower.exposition.prometheus import SnapshotCollector
from watchtower.notify.dispatcher import Dispatcher
from watchtower.notify.registry import build_notifiers
from watchtower.rules.config import RouteConfig, RuleSet, check_rules
from watchtower.rules.packaged import rule_paths

if TYPE_CHECKING:
    from watchtower.scale.controller import ScalingController

log = logging.getLogger(__name__)


def build_collectors(
    daemon: DaemonConfig,
    kafka: KafkaConfig,
    bootstrap_servers: str | None = None,
    redis_url: str | None = None,
    pipeline: PipelineConfig | None = None,
    flink: FlinkConfig | None = None,
    registry: CollectorKinds = REGISTRY,
) -> list[Collector]:
    """Instantiate the enabled collectors of every registered kind; configuration only, no connections.

    The collectors that read the pipeline's Redis (e2e_latency, spark_progress, canary) are built only
    when a `redis_url` is given; `pipeline` supplies the default topic, DLQ topic, data_dir and stream.
    The Flink collector is built when a `flink` section is configured.
    """
    ctx = BuildContext(kafka, bootstrap_servers, redis_url, pipeline or PipelineConfig(), flink)
    return registry.build(daemon.collectors, ctx)


def build_alerting(
    config: AlertingConfig, history: History, redis_url: str, gate: LeaderGate | None = None
) -> AlertEvaluator:
    """The rules, the store, the notifiers and the dispatcher; no connection is made here.

    Raises ConfigError listing every problem of the rule files.
    """
    rules, routes, files, problems = [], {}, [], []
    paths = rule_paths(config.rules)
    for path in paths:
        part, found = check_rules(path)
        problems += found
        rules += part.rules
        # Every part has a `default` route; an implicit one must not replace one a file defined.
        routes.update({k: v for k, v in part.routes.items() if k not in routes or v != RouteConfig()})
        files += part.files
    names = [r.name for r in rules]
    dupes = sorted({n for n in names if names.count(n) > 1})
    where = ", ".join(map(str, paths))
    problems += [f"alerting.rules: rule {n!r} is defined in more than one of {where}" for n in dupes]
    if problems:
        raise ConfigError(problems)
    ruleset = RuleSet(tuple(rules), routes, tuple(files))
    notifiers = build_notifiers(config.notifiers)
    store = AlertStore.from_url(redis_url, prefix=config.redis_prefix, sinks=tuple(notifiers))
    dispatcher = (
        Dispatcher(
            store,
            notifiers,
            poll_interval=config.poll_interval,
            backoff_base=config.backoff_base,
            backoff_cap=config.backoff_cap,
            give_up_after=config.give_up_after,
            gate=gate,
        )
        if notifiers
        else None
    )
    return AlertEvaluator(
        ruleset,
        history,
        store,
        dispatcher,
        interval=config.interval,
        startup_grace=config.startup_grace,
        on_readings=config.evaluate_on_readings,
        busy=config.busy,
        gate=gate,
    )


class Daemon:
    def __init__(
        self,
        collectors: Sequence[Collector],
        config: DaemonConfig | None = None,
        span_processors: Iterable[SpanProcessor] = (),
        clock: Callable[[], float] = time.time,
        history: History | None = None,
        alerting: AlertEvaluator | None = None,
        scaling: ScalingController | None = None,
        lease: LeaseStatus | None = None,
    ):
        self.config = config or DaemonConfig()
        self.collectors = list(collectors)
        self.clock = clock
        self.history = history or History(self.config.history_size)
        self.alerting = alerting
        self.scaling = scaling
        self.tracer_provider: TracerProvider = build_tracer_provider(
            self.config.service_name, self.config.otlp_endpoint, span_processors
        )
        # Each collector's new reading is announced here; the alert evaluator evaluates on it at once.
        self.readings = ReadingSignal()
        self.runner = CollectorRunner(
            self.collectors,
            self.history,
            self.tracer_provider.get_tracer("watchtower.daemon"),
            clock,
            readings=self.readings,
        )
        if alerting is not None and alerting.on_readings:
            alerting.listen(self.readings)
        self.registry = CollectorRegistry(auto_describe=False)
        specs = {c.name: c.specs for c in self.collectors}
        if scaling is not None:
            from watchtower.scale.metrics import COLLECTOR, SPECS

            specs[COLLECTOR] = SPECS
        self.registry.register(SnapshotCollector(self.history, specs, self.runner.health))
        if alerting is not None:
            self.registry.register(AlertingCollector(alerting))
        if lease is not None:
            self.registry.register(LeaderCollector(lease))
        self.http = HttpServer(
            self.registry,
            self.status,
            self.config.http.host,
            self.config.http.port,
            alerts=alerting.alerts_status if alerting is not None else None,
            scaling=scaling.status if scaling is not None else None,
        )

    def status(self, with_samples: bool = False) -> dict[str, Any]:
        snap = self.history.snapshot()
        collectors = {}
        for name, h in self.runner.health().items():
            collectors[name] = {
                "up": h.up,
                "since": h.since,
                "interval_seconds": h.interval,
                "last_success_at": h.last_success_at,
                "last_error": h.last_error,
                "last_error_at": h.last_error_at,
                "last_duration_seconds": h.last_duration,
                "cycles": h.cycles,
                "errors": h.errors,
                "overruns": h.overruns,
            }
        readings = {}
        for name, r in snap.readings.items():
            entry: dict[str, Any] = {"at": r.at, "samples": len(r.samples), "detail": dict(r.detail)}
            if with_samples:
                entry["samples"] = [
                    {"metric": s.metric, "labels": dict(s.labels), "value": s.value} for s in r.samples
                ]
            readings[name] = entry
        return {"at": self.clock(), "collectors": collectors, "snapshot": readings}

    def start(self) -> Daemon:
        self.http.start()
        log.info(
            "watchtower daemon listening",
            extra={"url": self.http.url, "collectors": ",".join(c.name for c in self.collectors)},
        )
        self.runner.start()
        if self.alerting is not None:
            self.alerting.start()
        if self.scaling is not None:
            self.scaling.start()
        return self

    def stop(self) -> None:
        if self.scaling is not None:
            self.scaling.stop()
        if self.alerting is not None:
            self.alerting.stop()
        self.runner.stop(wait=True)
        self.http.stop()
        self.tracer_provider.shutdown()  # flushes pending spans
        log.info("watchtower daemon stopped")

    def serve(self, stop: threading.Event) -> None:
        self.start()
        try:
            while not stop.wait(1.0):
                pass
        finally:
            self.stop()
