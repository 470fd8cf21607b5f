"""One scenario on the shared environment: steady state before, the method on its schedule, every fault
undone (also when interrupted), then the three verdicts: conservation (read back from the sinks),
detection (what was paged) and steady state after (with the time to recover).

`interrupt` (a threading.Event the CLI sets on Ctrl-C / SIGTERM) cuts every wait short; the `finally`
still undoes each started fault in reverse order and runs the scenario's rollbacks.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis

from watchtower.chaos.detection import AlertsSeen, Detection, judge_detection
from watchtower.chaos.faults import Fault, FaultContext, build
from watchtower.chaos.inject import Injector
from watchtower.chaos.readback import read_found, read_until
from watchtower.chaos.scenario import Scenario, Step
from watchtower.chaos.steady import ProbeResult, steady
from watchtower.chaos.verdict import Conservation
from watchtower.collectors.chaos_faults import record_end, record_start
from watchtower.contract import CHAOS_FAULTS

log = logging.getLogger(__name__)


class FaultLog:
    """Records each fault of a run in Redis (`contract.CHAOS_FAULTS`) for the `chaos` collector, so the
    dashboards mark it. Best effort: a write Redis refuses (it may be the fault) is logged, never fatal."""

    def __init__(
        self,
        redis_url: str | None,
        run_id: str,
        scenario: str,
        timeout: float = 1.0,
        key: str = CHAOS_FAULTS,
    ):
        self.run_id, self.scenario, self.key = run_id, scenario, key
        self._client = (
            redis.Redis.from_url(redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
            if redis_url
            else None
        )
        self._fields: dict[object, str] = {}

    def start(self, slot: object, fault: str, step: int | str) -> None:
        if self._client is None:
            return
        self.end(slot)  # a step started again (`every`) without a stop of its own: the previous one ended
        try:
            self._fields[slot] = record_start(
                self._client, self.run_id, self.scenario, fault, step, time.time(), self.key
            )
        except redis.RedisError as exc:
            log.warning("cannot record the fault's start in Redis", extra={"fault": fault, "error": str(exc)})

    def end(self, slot: object) -> None:
        field = self._fields.pop(slot, None)
        if self._client is None or field is None:
            return
        try:
            record_end(self._client, field, time.time(), self.key)
        except redis.RedisError as exc:
            log.warning("cannot record the fault's end in Redis", extra={"error": str(exc)})

    def close(self) -> None:
        for slot in list(self._fields):
            self.end(slot)
        if self._client is not None:
            self._client.close()


@dataclass
class RunResult:
    scenario: str
    purpose: str
    run_id: str
    started_at: float
    ended_at: float = 0.0
    fault_start: float = 0.0
    method_end: float = 0.0
    steady_before: list[ProbeResult] = field(default_factory=list)
    steady_after: list[ProbeResult] = field(default_factory=list)
    recovered_after: float | None = None  # seconds from the method end until every probe held again
    conservation: Conservation | None = None
    detection: Detection | None = None
    events: list[dict[str, Any]] = field(default_factory=list)  # the timeline: fault start/stop, notes
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    timeline: list[dict[str, Any]] = field(default_factory=list)  # sampled readings for the PNG
    alerts_seen: list[AlertsSeen] = field(default_factory=list)  # /api/v1/alerts, sampled with the timeline

    @property
    def ok(self) -> bool:
        return (
            not self.errors
            and not self.interrupted
            and all(p.holds for p in self.steady_before)
            and all(p.holds for p in self.steady_after)
            and (self.conservation is None or self.conservation.ok)
            and (self.detection is None or self.detection.ok)
        )

    def failures(self) -> list[str]:
        out = list(self.errors)
        if self.interrupted:
            out.append("interrupted")
        if not all(p.holds for p in self.steady_before):
            out.append(
                "steady state before: " + ", ".join(p.describe() for p in self.steady_before if not p.holds)
            )
        if not all(p.holds for p in self.steady_after):
            out.append(
                "steady state after: " + ", ".join(p.describe() for p in self.steady_after if not p.holds)
            )
        if self.conservation is not None and not self.conservation.ok:
            out.append(self.conservation.summary())
        if self.detection is not None and not self.detection.ok:
            out.append("detection: " + self.detection.summary())
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "purpose": self.purpose,
            "run_id": self.run_id,
            "ok": self.ok,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration_s": round(self.ended_at - self.started_at, 2),
            "fault_start": self.fault_start,
            "method_end": self.method_end,
            "steady_before": [p.__dict__ for p in self.steady_before],
            "steady_after": [p.__dict__ for p in self.steady_after],
            "recovered_after_s": self.recovered_after,
            "conservation": self.conservation.as_dict() if self.conservation else None,
            "detection": self.detection.as_dict() if self.detection else None,
            "events": self.events,
            "errors": self.errors,
            "interrupted": self.interrupted,
            "failures": self.failures(),
            "timeline": self.timeline,
            "alerts_seen": _changes(self.alerts_seen),
        }


def schedule(method: tuple[Step, ...]) -> list[tuple[float, str, int]]:
    """(seconds after the method start, "start" | "stop", step index), in order. Pure."""
    out: list[tuple[float, str, int]] = []
    for i, s in enumerate(method):
        starts = [s.at]
        if s.every is not None and s.until is not None:
            t = s.at + s.every
            while t <= s.until + 1e-9:
                starts.append(t)
                t += s.every
        for t in starts:
            out.append((t, "start", i))
            if s.duration is not None:
                out.append((t + s.duration, "stop", i))
    return sorted(out, key=lambda e: (e[0], 0 if e[1] == "stop" else 1, e[2]))


def _changes(seen: list[AlertsSeen]) -> list[dict[str, Any]]:
    """The /api/v1/alerts looks where the answer changed (firing rules, or reachable), for the journal."""
    out: list[dict[str, Any]] = []
    last = None
    for s in seen:
        if (s.firing, s.reachable) != last:
            out.append({"at": s.at, "firing": sorted(s.firing), "reachable": s.reachable})
            last = s.firing, s.reachable
    return out


def _timeline_point(readings: list, at: float) -> dict[str, Any]:
    def worst(metric: str, **match: str) -> float | None:
        vals = [
            s.value
            for r in readings
            for s in r.samples
            if s.metric == metric and all(dict(s.labels).get(k) == v for k, v in match.items())
        ]
        return max(vals) if vals else None

    return {
        "at": at,
        "lag_seconds": worst("watchtower_consumer_lag_seconds"),
        "e2e_p95": worst("watchtower_e2e_latency_seconds", quantile="0.95"),
        "dlq_rows": worst("watchtower_pipeline_records_total", outcome="dlq"),
        "late_share": worst("watchtower_pipeline_outcome_share", outcome="late"),
    }


class ScenarioRunner:
    def __init__(
        self,
        env,
        interrupt: threading.Event,
        readback_timeout: float = 90.0,
        settle_timeout: float = 90.0,
        drain_timeout: float = 240.0,
    ):
        self.drain_timeout = drain_timeout
        self.env = env
        self.settle_timeout = settle_timeout
        self.interrupt = interrupt
        self.readback_timeout = readback_timeout

    def _wait(self, seconds: float) -> bool:
        """Sleep, sampling the timeline; False when interrupted."""
        end = time.time() + max(0.0, seconds)
        while time.time() < end:
            if self.interrupt.wait(min(0.5, max(0.0, end - time.time()))):
                return False
            self._sample()
        return not self.interrupt.is_set()

    def _sample(self) -> None:
        if self._result is not None:
            self._result.timeline.append(_timeline_point(self.env.readings(), time.time()))
            self._look()

    def _look(self) -> AlertsSeen:
        """One GET /api/v1/alerts, kept for the detection verdict."""
        seen = self.env.alerts_seen()
        if self._result is not None:
            self._result.alerts_seen.append(seen)
        return seen

    def run(self, sc: Scenario) -> RunResult:
        env = self.env
        res = RunResult(sc.name, sc.purpose, uuid.uuid4().hex[:10], time.time())
        self._result = res
        p = env.cfg.pipeline
        inj = Injector(
            env.cfg.kafka, env.endpoints.bootstrap_servers, p.topic, scenario=sc.name, run_id=res.run_id
        )
        ctx = FaultContext(
            inj,
            p,
            env.pid,
            env.restart,
            lambda: int(time.time() * 1000),
            fail_pages=env.pager.fail,
            redis_url=env.endpoints.redis_url,
            workers_group=env.workers_group,
            firing=lambda: self._look().firing,
        )
        started: list[Fault] = []
        faults = FaultLog(env.endpoints.redis_url, res.run_id, sc.name)
        self._settle(sc)
        res.steady_before = steady(sc.steady_state.probes, env.readings())
        self._look()  # what fired before the faults is not theirs
        active: dict[int, Fault] = {}
        plan = schedule(sc.method)
        t0 = res.fault_start = time.time()
        try:
            for at, action, i in plan:
                if not self._wait(t0 + at - time.time()):
                    res.interrupted = True
                    break
                step = sc.method[i]
                if action == "start":
                    fault = build(step.fault, step.params)
                    active[i] = fault
                    started.append(fault)
                    res.events.append({"at": time.time(), "action": "start", "fault": step.fault, "step": i})
                    faults.start(i, step.fault, i)
                    fault.start(ctx)
                else:
                    fault = active.pop(i, None)
                    if fault is not None:
                        fault.stop(ctx)
                        faults.end(i)
                        res.events.append(
                            {"at": time.time(), "action": "stop", "fault": step.fault, "step": i}
                        )
        except Exception as exc:  # noqa: BLE001 - recorded; the rollbacks below still run
            log.exception("scenario %s: a fault failed", sc.name)
            res.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            for i, fault in reversed(list(active.items())):
                fault.stop(ctx)
                faults.end(i)
                res.events.append(
                    {"at": time.time(), "action": "rollback", "fault": sc.method[i].fault, "step": i}
                )
            for j, step in enumerate(sc.rollbacks):
                try:
                    build(step.fault, step.params).stop(ctx)
                    res.events.append(
                        {"at": time.time(), "action": "rollback", "fault": step.fault, "rollback": j}
                    )
                except Exception as exc:  # noqa: BLE001
                    res.errors.append(f"rollback {j} ({step.fault}): {exc}")
            faults.close()  # a fault whose stop raised is still recorded as ended: the run is over
            res.method_end = time.time()
        if res.interrupted or self.interrupt.is_set():
            res.interrupted = True
            inj.close()
            res.events += [{"at": res.method_end, "action": "note", **n} for n in ctx.notes]
            res.ended_at = time.time()
            return res
        try:
            inj.end_markers(p.partitions)
            inj.close()
            if sc.expect.records == "conserved":
                # A job restarted by the method may still be starting (Spark took 95 s on a loaded 2-core
                # machine): let it drain first, then read back. A job that drained but lost records is
                # judged at once, so a failing verdict does not wait for nothing.
                try:
                    # Looking on: an alert the fault raised may fire and resolve during this wait, and
                    # /api/v1/alerts must have been seen showing it (redis-pause fired 15-20 s, unseen).
                    env.wait_drained(
                        self.drain_timeout,
                        "the job to drain before the read-back",
                        self.interrupt,
                        on_tick=self._sample,
                    )
                except TimeoutError as exc:
                    res.errors.append(str(exc))
                res.conservation = read_until(
                    inj.expected,
                    lambda: read_found(p.data_dir / "delta", p.topic, env.kafka_conf(), p.dlq_topic),
                    timeout=self.readback_timeout,
                )
            for fault in started:
                verify = getattr(fault, "verify", None)
                if verify is not None:
                    res.errors += verify(ctx)
            self._await_alerts(sc, res)
            res.detection = judge_detection(
                env.pager.since(t0),
                sc.expect.alerts,
                t0,
                res.method_end,
                sc.expect.tolerate,
                seen=res.alerts_seen,
            )
            self._await_steady(sc, res)
        except Exception as exc:  # noqa: BLE001 - recorded as the scenario's failure
            log.exception("scenario %s: verdict failed", sc.name)
            res.errors.append(f"{type(exc).__name__}: {exc}")
        res.events += [{"at": res.method_end, "action": "note", **n} for n in ctx.notes]
        self._check_job(res)
        res.ended_at = time.time()
        return res

    def _check_job(self, res: RunResult) -> None:
        """A Spark job or daemon that died during the scenario (and was not restarted by it) fails the
        scenario, and is restarted so the next one does not inherit the outage."""
        spark = self.env.spark
        if spark is not None and spark.poll() is not None:
            res.errors.append(
                f"the Spark job exited with code {spark.returncode} during the scenario; see {self.env.root / 'spark.log'}"
            )
            self.env.restart("spark")
        daemon = self.env.daemon
        if daemon is not None and daemon.poll() is not None:
            res.errors.append(
                f"the watchtower daemon exited with code {daemon.returncode} during the scenario; see {self.env.root / 'daemon.log'}"
            )
            self.env.restart("daemon")

    def _settle(self, sc: Scenario) -> None:
        """Before a scenario: until its probes hold and nothing fires or is pending (the previous scenario's
        pages resolved, the job warmed up), at most `settle_timeout`; the steady-state check follows."""
        deadline = time.time() + self.settle_timeout
        while time.time() < deadline:
            held = all(p.holds for p in steady(sc.steady_state.probes, self.env.readings()))
            try:
                quiet = not self.env.active_alerts()
            except RuntimeError:  # the daemon does not answer (yet): not settled
                quiet = False
            if held and quiet:
                return
            if self.interrupt.wait(0.5):
                return

    def _await_alerts(self, sc: Scenario, res: RunResult) -> None:
        """Until every expected alert paged and resolved as asked, or its deadline passed."""
        deadline = max(
            [res.fault_start + a.within for a in sc.expect.alerts]
            + [res.method_end + (a.resolve_within or 0) for a in sc.expect.alerts]
            + [time.time()]
        )
        while time.time() < deadline:
            d = judge_detection(
                self.env.pager.since(res.fault_start),
                sc.expect.alerts,
                res.fault_start,
                res.method_end,
                sc.expect.tolerate,
                seen=res.alerts_seen,
            )
            if all(a.ok for a in d.alerts):
                return
            if not self._wait(0.5):
                res.interrupted = True
                return

    def _await_steady(self, sc: Scenario, res: RunResult) -> None:
        deadline = res.method_end + sc.steady_state.recover_within
        while True:
            res.steady_after = steady(sc.steady_state.probes, self.env.readings())
            if all(p.holds for p in res.steady_after):
                res.recovered_after = max(0.0, time.time() - res.method_end)
                return
            if time.time() >= deadline or not self._wait(0.5):
                return

    _result: RunResult | None = None
