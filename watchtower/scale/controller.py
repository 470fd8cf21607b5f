"""The scaling controller: for each target under `scaling.targets`, on its own interval, decide and maybe apply.

    probe the sink -> window the history -> policy.evaluate (pure) -> leader? -> actuator.apply -> metrics

Every cycle decides, leader or not (so a standby's `/api/v1/scaling` and metrics stay warm); only the
holder of the `LeaderGate` applies, with its fencing token where the actuator takes one. The decisions go
into the history as the `scaling` collector's reading, so alert rules see the vetoes, the partitions cap
and the stuck partitions like any other metric. A failing actuator or probe is logged once per state
change and counted; the loop goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from watchtower.core.history import History
from watchtower.core.leader import AlwaysLeader, LeaderGate
from watchtower.core.types import Reading, Sample
from watchtower.scale import registry
from watchtower.scale.base import Actuator, ActuatorError, ApplyResult, Decision, FencedActuator
from watchtower.scale.config import ScalingConfig, TargetConfig
from watchtower.scale.inputs import gather, sink_signals
from watchtower.scale.metrics import COLLECTOR
from watchtower.scale.policy import VETO_KINDS, Memory, evaluate, settled_at

log = logging.getLogger(__name__)

ALL_VETOES = (*VETO_KINDS, "actuator_unreachable")
PROBE_KEY = "wt:scale:probe"


@dataclass
class TargetState:
    name: str
    config: TargetConfig
    actuator: Actuator
    memory: Memory | None = None
    current: int | None = None
    decision: Decision | None = None
    result: ApplyResult | None = None
    leader: bool = False
    sink_latency: float | None = None
    actuator_error: str | None = None
    last_action: tuple[float, int] | None = None
    actions: Counter[str] = field(default_factory=Counter)
    vetoes: Counter[str] = field(default_factory=Counter)
    apply_errors: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)  # the last actions, newest last


class RedisProbe:
    """Times one SET of a probe key; a hung or unreachable Redis reads as `timeout` seconds."""

    def __init__(self, url: str, timeout: float):
        self.timeout = timeout
        self.client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)

    def __call__(self) -> float:
        started = time.monotonic()
        try:
            self.client.set(PROBE_KEY, "1", px=60_000)
        except redis.RedisError:
            return max(self.timeout, time.monotonic() - started)
        return time.monotonic() - started

    def close(self) -> None:
        self.client.close()


class ScalingController:
    def __init__(
        self,
        config: ScalingConfig,
        history: History,
        *,
        gate: LeaderGate | None = None,
        redis_url: str | None = None,
        spark_trigger_interval: float | None = None,
        clock: Callable[[], float] = time.time,
        actuators: Mapping[str, Actuator] | None = None,
    ):
        """Builds every target's actuator (no connection); raises ValueError naming a bad target."""
        self.history = history
        self.gate = gate or AlwaysLeader()
        self.clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.targets: dict[str, TargetState] = {}
        self.probes: dict[str, RedisProbe] = {}
        for name, cfg in config.targets.items():
            if cfg.sink.spark_trigger_interval is None and spark_trigger_interval:
                cfg = cfg.model_copy(
                    update={
                        "sink": cfg.sink.model_copy(update={"spark_trigger_interval": spark_trigger_interval})
                    }
                )
            actuator = (actuators or {}).get(name) or registry.build(name, cfg.actuator, redis_url)
            self.targets[name] = TargetState(name, cfg, actuator)
            if cfg.sink.redis_probe and redis_url:
                self.probes[name] = RedisProbe(redis_url, cfg.sink.probe_timeout)

    # -- loop -----------------------------------------------------------------------------------------

    def start(self) -> ScalingController:
        self._stop.clear()
        for name, t in self.targets.items():
            th = threading.Thread(
                target=self._run, args=(name, t.config.interval), name=f"scaling-{name}", daemon=True
            )
            th.start()
            self._threads.append(th)
        return self

    def stop(self) -> None:
        self._stop.set()
        for th in self._threads:
            th.join()
        self._threads.clear()
        for t in self.targets.values():
            t.actuator.close()
        for p in self.probes.values():
            p.close()

    def _run(self, name: str, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.cycle(name)
            except Exception:  # noqa: BLE001 - a bug in one target must not stop the others
                log.exception("scaling cycle failed", extra={"target": name})

    # -- one cycle ------------------------------------------------------------------------------------

    def cycle(self, name: str) -> Decision:
        t = self.targets[name]
        cfg = t.config
        now = self.clock()
        probe = self.probes.get(name)
        t.sink_latency = probe() if probe is not None else None
        try:
            t.current = t.actuator.current()
            if t.actuator_error is not None:
                log.info("actuator reachable again", extra={"target": name})
            t.actuator_error = None
        except ActuatorError as exc:
            if t.actuator_error is None:
                log.warning("cannot read the target's replicas", extra={"target": name, "error": str(exc)})
            t.actuator_error = str(exc)
        if t.current is None:  # never read: nothing to decide from
            decision = Decision(
                name, now, 0, 0, f"cannot read the replicas: {t.actuator_error}", "actuator_unreachable"
            )
            t.vetoes["actuator_unreachable"] += 1
            with self._lock:
                t.decision, t.leader = decision, self.gate.holds() is not None
            self.history.append(self.reading(now))
            return decision
        current = t.current
        sink = sink_signals(
            self.history, now, t.sink_latency, max_age=max(cfg.policy.window, 3 * cfg.interval)
        )
        inputs = gather(
            self.history,
            now,
            group=cfg.group,
            topic=cfg.topic,
            window=cfg.policy.window,
            stuck_after=cfg.policy.stuck_after,
            collector=cfg.collector,
            rates_since=settled_at(t.memory),
            short_window=cfg.policy.short_window,
            sink=sink,
        )
        decision, memory = evaluate(inputs, now, current, cfg, t.memory, name)
        if decision.veto is None and t.actuator_error is not None and decision.desired != current:
            decision = Decision(
                name,
                now,
                current,
                decision.desired,
                decision.reason + "; held: actuator unreachable",
                "actuator_unreachable",
                decision.inputs,
            )
        token = self.gate.holds()
        result = None
        if decision.veto is not None:
            t.vetoes[decision.veto] += 1
        elif decision.changes and token is not None:
            result = self._apply(t, decision.desired, token)
            if result.ok:
                memory = memory.acted(decision, inputs)
                t.actions["up" if decision.desired > current else "down"] += 1
                t.last_action = (now, decision.desired)
                t.current = decision.desired
                t.history = [
                    *t.history[-19:],
                    {"at": now, "from": current, "to": decision.desired, "reason": decision.reason},
                ]
                log.info(
                    "scaled",
                    extra={
                        "target": name,
                        "from": current,
                        "to": decision.desired,
                        "reason": decision.reason,
                    },
                )
            else:
                t.apply_errors += 1
                log.warning(
                    "scaling not applied",
                    extra={"target": name, "to": decision.desired, "error": result.error},
                )
        with self._lock:
            t.memory, t.decision, t.result, t.leader = memory, decision, result, token is not None
        self.history.append(self.reading(now))
        return decision

    def _apply(self, t: TargetState, replicas: int, token: int) -> ApplyResult:
        try:
            if isinstance(t.actuator, FencedActuator):
                return t.actuator.apply_fenced(replicas, token)
            return t.actuator.apply(replicas)
        except Exception as exc:  # noqa: BLE001 - the protocol says apply does not raise; a bug must not kill the loop
            return ApplyResult(t.name, replicas, None, error=f"{type(exc).__name__}: {exc}")

    # -- outputs --------------------------------------------------------------------------------------

    def reading(self, now: float) -> Reading:
        samples: list[Sample] = []
        with self._lock:
            states = list(self.targets.values())
        for t in states:
            d = t.decision
            lbl = (("target", t.name),)
            samples.append(Sample("watchtower_scaling_leader", lbl, float(t.leader)))
            if t.current is not None:
                samples.append(Sample("watchtower_scaling_current_replicas", lbl, float(t.current)))
            for kind in ALL_VETOES:
                samples.append(
                    Sample(
                        "watchtower_scaling_veto",
                        (("kind", kind), ("target", t.name)),
                        float(d is not None and d.veto == kind),
                    )
                )
                samples.append(
                    Sample(
                        "watchtower_scaling_vetoes_total",
                        (("kind", kind), ("target", t.name)),
                        float(t.vetoes[kind]),
                    )
                )
            for direction in ("up", "down"):
                samples.append(
                    Sample(
                        "watchtower_scaling_actions_total",
                        (("direction", direction), ("target", t.name)),
                        float(t.actions[direction]),
                    )
                )
            samples.append(Sample("watchtower_scaling_apply_errors_total", lbl, float(t.apply_errors)))
            if t.last_action is not None:
                samples.append(
                    Sample("watchtower_scaling_last_action_timestamp_seconds", lbl, t.last_action[0])
                )
                samples.append(
                    Sample("watchtower_scaling_last_action_replicas", lbl, float(t.last_action[1]))
                )
            if t.sink_latency is not None:
                samples.append(Sample("watchtower_scaling_sink_write_latency_seconds", lbl, t.sink_latency))
            if d is None:
                continue
            samples.append(Sample("watchtower_scaling_desired_replicas", lbl, float(d.desired)))
            info = d.inputs
            if info.get("required") is not None:
                samples.append(Sample("watchtower_scaling_required_replicas", lbl, float(info["required"])))
            samples.append(
                Sample(
                    "watchtower_scaling_partitions_capped", lbl, float(bool(info.get("partitions_capped")))
                )
            )
            stuck = info.get("stuck_partitions", [])
            samples.append(Sample("watchtower_scaling_stuck_partitions", lbl, float(len(stuck))))
            for p in stuck:
                samples.append(
                    Sample(
                        "watchtower_scaling_partition_stuck", (("partition", str(p)), ("target", t.name)), 1.0
                    )
                )
            if info.get("capacity_per_replica") is not None:
                samples.append(
                    Sample(
                        "watchtower_scaling_capacity_per_replica", lbl, float(info["capacity_per_replica"])
                    )
                )
            if info.get("backlog_seconds") is not None:
                samples.append(
                    Sample("watchtower_scaling_backlog_seconds", lbl, float(info["backlog_seconds"]))
                )
        return Reading(COLLECTOR, now, tuple(samples))

    def target_status(self, name: str) -> dict[str, Any] | None:
        """One target, in a shape KEDA's metrics-api scaler reads: `desired` is what to run now (the current
        count while a guard holds), `wanted` what the policy asks for before the guards."""
        t = self.targets.get(name)
        if t is None:
            return None
        with self._lock:
            d, result = t.decision, t.result
        current = t.current
        run_now = current if d is None or d.veto is not None else d.desired
        return {
            "target": name,
            "mode": t.config.mode,
            "group": t.config.group,
            "topic": t.config.topic,
            "actuator": t.config.actuator.kind,
            "desired": run_now,
            "wanted": d.desired if d else None,
            "current": current,
            "veto": d.veto if d else None,
            "reason": d.reason if d else "no decision yet",
            "at": d.at if d else None,
            "leader": t.leader,
            "inputs": dict(d.inputs) if d else {},
            "sink_write_latency_seconds": t.sink_latency,
            "actuator_error": t.actuator_error,
            "last_apply": None
            if result is None
            else {
                "requested": result.requested,
                "applied": result.applied,
                "how": result.how,
                "error": result.error,
            },
            "actions": dict(t.actions),
            "vetoes": dict(t.vetoes),
            "recent_actions": list(t.history),
        }

    def status(self, name: str | None = None) -> dict[str, Any] | None:
        if name is not None:
            return self.target_status(name)
        return {"at": self.clock(), "targets": {n: self.target_status(n) for n in self.targets}}


def build_controller(
    config: Any, history: History, redis_url: str | None, gate: LeaderGate | None = None
) -> ScalingController:
    """The controller for a `WatchtowerConfig`: its scaling targets, the pipeline's trigger for the Spark guard."""
    if redis_url is None:
        from watchtower.stack import StackError, resolve_endpoints

        try:  # the local pool and the sink probe talk to the pipeline's Redis: the running stack's, if any
            redis_url = resolve_endpoints(config).redis_url
        except StackError:
            redis_url = None
    return ScalingController(
        config.scaling,
        history,
        gate=gate,
        redis_url=redis_url,
        spark_trigger_interval=config.pipeline.trigger_interval,
    )
