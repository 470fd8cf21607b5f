"""Runs every collector on its own interval and keeps score of its health.

Each collector is one APScheduler job (max_instances=1, coalesce) on a thread pool with a thread per
collector, so a slow or hanging collector only delays itself. A collector with an enabled
`interval_policy` (collectors/interval_policy.py) is rescheduled when the interval its cost asks for
changes. Every successful reading goes into the history and is announced on the `ReadingSignal`, which the
alert evaluator waits on. A cycle that raises marks the collector
down; the change (up -> down, down -> up) is logged once, errors are counted, and the next cycle simply
tries again, so recovery needs nothing but the component coming back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode, Tracer

from watchtower.collectors.base import Collector
from watchtower.collectors.interval_policy import IntervalPolicyConfig, IntervalState, next_interval
from watchtower.collectors.interval_policy import start as policy_start
from watchtower.core.health import CollectorHealth
from watchtower.core.history import History
from watchtower.core.signal import ReadingSignal

log = logging.getLogger(__name__)

_HISTORY_WANTED = 300.0  # seconds of readings the default rule windows look back over


class CollectorRunner:
    def __init__(
        self,
        collectors: Iterable[Collector],
        history: History,
        tracer: Tracer | None = None,
        clock: Callable[[], float] = time.time,
        readings: ReadingSignal | None = None,
    ):
        self.collectors = {c.name: c for c in collectors}
        self.history = history
        self.readings = readings
        self._policies: dict[str, tuple[IntervalPolicyConfig, IntervalState]] = {}
        for name, c in self.collectors.items():
            cfg = getattr(c, "interval_policy", None)
            if isinstance(cfg, IntervalPolicyConfig) and cfg.enabled:
                self._policies[name] = (cfg, policy_start(cfg, c.interval))
                covers = history.size * cfg.min_interval
                if covers < _HISTORY_WANTED:
                    # Rules look back minutes (growth, time_to_breach, consumer_status: 5 m by default).
                    log.warning(
                        "at its fastest interval the history covers only %.0f s of %s: set "
                        "daemon.history_size to at least %d",
                        covers,
                        name,
                        int(_HISTORY_WANTED / cfg.min_interval),
                    )
        self.tracer = tracer or trace.get_tracer(__name__)
        self.clock = clock
        self._lock = threading.Lock()
        self._health = {n: CollectorHealth(n, self._interval(n)) for n in self.collectors}
        self._scheduler: BackgroundScheduler | None = None
        # apscheduler warns on every skipped run of a slow job; we count those instead.
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)

    def _interval(self, name: str) -> float:
        policy = self._policies.get(name)
        return policy[1].interval if policy is not None else self.collectors[name].interval

    def health(self) -> dict[str, CollectorHealth]:
        return dict(self._health)

    def _update(self, name: str, fn: Callable[[CollectorHealth], CollectorHealth]) -> None:
        with self._lock:
            self._health[name] = fn(self._health[name])

    def run_once(self, name: str) -> bool:
        """One cycle of one collector: collect, record, trace. Never raises; returns whether it succeeded."""
        collector = self.collectors[name]
        now = self.clock()
        started = time.monotonic()
        with self.tracer.start_as_current_span(
            "watchtower.collect", attributes={"watchtower.collector": name}
        ) as span:
            try:
                reading = collector.collect(now)
                error = None
            except Exception as exc:  # noqa: BLE001 - a plugin's failure must never reach the scheduler
                reading, error = None, exc
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
            duration = time.monotonic() - started
            span.set_attribute("watchtower.duration_seconds", duration)
            span.set_attribute("watchtower.outcome", "ok" if error is None else "error")
            if reading is not None:
                span.set_attribute("watchtower.samples", len(reading.samples))

        if reading is not None:
            self.history.append(reading)
            if self.readings is not None:
                self.readings.publish(name, reading.at)
        else:
            self.history.forget(name)
        self._adapt(name, duration)
        at = self.clock()
        with self._lock:
            before = self._health[name]
            h = replace(before.observe(duration), cycles=before.cycles + 1)
            if error is None:
                h = replace(h, up=True, last_success_at=at)
            else:
                h = replace(
                    h,
                    up=False,
                    errors=h.errors + 1,
                    last_error=f"{type(error).__name__}: {error}",
                    last_error_at=at,
                )
            if h.up != before.up:
                h = replace(h, since=at)
            self._health[name] = h
        if h.up != before.up:  # state changes are logged once, not every cycle
            if error is None:
                log.info("collector up", extra={"collector": name, "after_errors": h.errors})
            else:
                log.warning("collector down", extra={"collector": name, "error": h.last_error})
        return error is None

    def _adapt(self, name: str, duration: float) -> None:
        """Feed the cycle's cost to the collector's interval policy; reschedule when the interval changes."""
        policy = self._policies.get(name)
        if policy is None:
            return
        cfg, state = policy
        new = next_interval(state, duration, cfg)
        self._policies[name] = (cfg, new)
        if new.interval == state.interval:
            return
        self._update(name, lambda h: replace(h, interval=new.interval))
        scheduler = self._scheduler
        if scheduler is not None:
            try:
                scheduler.reschedule_job(name, trigger=IntervalTrigger(seconds=new.interval, timezone="UTC"))
            except Exception:  # noqa: BLE001 - stopping: the job is gone
                return
        log.info(
            "collector interval changed",
            extra={"collector": name, "interval": new.interval, "cost": round(new.cost, 4)},
        )

    def _on_overrun(self, event: JobExecutionEvent) -> None:
        if event.job_id in self._health:
            self._update(event.job_id, lambda h: replace(h, overruns=h.overruns + 1))

    def start(self) -> None:
        """Schedule every collector, first cycles right away; returns at once."""
        if self._scheduler is not None:
            return
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=max(1, len(self.collectors)))},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
            timezone="UTC",
        )
        scheduler.add_listener(self._on_overrun, EVENT_JOB_MAX_INSTANCES)
        for name in self.collectors:
            scheduler.add_job(
                self.run_once,
                IntervalTrigger(seconds=self._interval(name), timezone="UTC"),
                args=[name],
                id=name,
                name=name,
                next_run_time=datetime.now(UTC),
            )
        self._scheduler = scheduler
        scheduler.start()

    def stop(self, wait: bool = True) -> None:
        """Stop scheduling; wait for running cycles (each bounded by its collector's timeouts); close clients."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=wait)
            self._scheduler = None
        for c in self.collectors.values():
            try:
                c.close()
            except Exception:  # noqa: BLE001
                log.exception("collector close failed", extra={"collector": c.name})
