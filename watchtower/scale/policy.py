"""The scaling policy: how many replicas a consumer group needs, and whether to change now. Pure, no I/O.

    decision, memory = evaluate(inputs, now, current, target, memory)      # one cycle
    decide(history, now, current, target) -> Decision                      # the same from a history

`Memory` is what the policy remembers between cycles (recommendations for the stabilization window, the
last action and whether it helped, the measured capacity per replica and when it was measured); the
controller keeps it and passes it back, and calls `acted(...)` when an action was applied. Formulas and
knobs: docs/scaling.md.

Order of a cycle (mode `capacity`):
1. capacity per replica: consume rate / replicas (/ busy ratio where reported), trusted while the
   consumers are saturated (backlog above busy_backlog all window), else the one remembered (or the
   hint); with neither (or a stale one), the short-window rate while the consumers fall behind;
2. urgency: the backlog will not drain within catch_up - rebalance at the short window's pace;
3. required = ceil((input rate + backlog / (catch_up - rebalance)) / (capacity x target_utilization));
   urgent: the short window's input rate when higher, and the backlog that grows until the step is in
   effect; idle -> min;
4. bounds: min..max replicas, never above the partitions (`partitions_capped` when the need is);
5. scale-down only to the highest recommendation of the stabilization window; max step either way;
6. holds, in order: rebalancing (the group's, or the last action's handover not over yet, unless
   urgent and that handover has outlasted rebalance_time), cooldown (>= observed rebalance x factor),
   and for scale-up only sink_backpressure, then ineffective_step (a verified step that did not raise
   the consume rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from watchtower.core.history import History
from watchtower.scale.base import Decision
from watchtower.scale.config import TargetConfig
from watchtower.scale.inputs import REBALANCING_STATES, Inputs, gather, short_window_of

VETO_KINDS = ("rebalancing", "cooldown", "sink_backpressure", "ineffective_step", "no_data")


@dataclass(frozen=True, slots=True)
class Action:
    at: float
    from_: int
    to: int
    consume_rate: float | None  # the rate before it, for verification
    capacity: float | None  # per replica, at the time: the expected gain is capacity x (to - from)
    # committed offsets of the partitions with lag at the time: the rebalance is over once each moved
    waiting: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Memory:
    recommendations: tuple[tuple[float, int], ...] = ()
    capacity: float | None = None
    capacity_at: float | None = None  # when `capacity` was last measured (or raised)
    last_action: Action | None = None
    verified: bool | None = None  # of the last scale-up: None pending, True effective, False ineffective
    ineffective_until: float | None = None
    rebalance_seconds: float | None = None  # observed after the last action (None: not yet settled)
    keda_previous: tuple[tuple[int, int], ...] = ()  # keda mode: committed offsets of the previous cycle
    keda_scale_ups: tuple[tuple[float, int], ...] = ()  # keda mode: (at, replicas before) within the period

    def acted(self, decision: Decision, inputs: Inputs | None = None) -> Memory:
        """The decision was applied: start its cooldown, its verification and its rebalance timing."""
        info = decision.inputs
        waiting = ()
        if inputs is not None:
            waiting = tuple(
                (p, c)
                for p, c in sorted(inputs.committed.items())
                if inputs.end.get(p, 0) > c and p not in inputs.stuck
            )
        action = Action(
            decision.at,
            decision.current,
            decision.desired,
            info.get("consume_rate"),
            info.get("capacity_per_replica"),
            waiting,
        )
        ups = self.keda_scale_ups
        if decision.desired > decision.current:
            ups = (*ups, (decision.at, decision.current))
        return replace(self, last_action=action, verified=None, rebalance_seconds=None, keda_scale_ups=ups)


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a cycle found besides the number: signals for metrics and alerts."""

    required: int | None = None  # before bounds
    partitions_capped: bool = False
    notes: list[str] = field(default_factory=list)


def _bounds(target: TargetConfig, partitions: int) -> tuple[int, int]:
    upper = min(target.max_replicas, partitions) if partitions else target.max_replicas
    return min(target.min_replicas, upper), upper


def _stabilized(recs: tuple[tuple[float, int], ...], now: float, window: float) -> int:
    return max(r for at, r in recs if at >= now - window)


def _cooldown(target: TargetConfig, memory: Memory) -> float:
    observed = (memory.rebalance_seconds or 0.0) * target.policy.rebalance_factor
    return max(target.policy.cooldown, observed)


def _observe_rebalance(memory: Memory, inputs: Inputs, now: float, give_up: float) -> Memory:
    """The rebalance after an action is over when the group is stable with the new member count and every
    partition that had lag has committed again (a cooperative rebalance hands partitions over in more
    than one round); or, when that never shows, after `give_up` seconds."""
    a = memory.last_action
    if a is None or memory.rebalance_seconds is not None:
        return memory
    moved = all(inputs.committed.get(p, c) > c or p in inputs.stuck for p, c in a.waiting)
    settled = inputs.members == a.to and inputs.group_state == "stable" and moved
    if settled or now - a.at >= give_up:
        return replace(memory, rebalance_seconds=max(0.0, now - a.at))
    return memory


def settled_at(memory: Memory | None) -> float | None:
    """Since when rates measure the current replica count: the end of the last action's rebalance."""
    if memory is None or memory.last_action is None:
        return None
    return memory.last_action.at + (
        memory.rebalance_seconds if memory.rebalance_seconds is not None else float("inf")
    )


def _verify(
    memory: Memory, inputs: Inputs, now: float, target: TargetConfig, saturated: bool
) -> tuple[Memory, str | None]:
    a, p = memory.last_action, target.policy
    if a is None or a.to <= a.from_ or memory.verified is not None or now - a.at < p.verify_after:
        return memory, None
    if inputs.consume_rate is None:
        return memory, None  # no rate measured since the rebalance ended yet
    if not saturated:
        return replace(memory, verified=True), "last scale-up verified: the backlog drained"
    expected = (a.capacity or 0.0) * (a.to - a.from_)
    gain = (inputs.consume_rate or 0.0) - (a.consume_rate or 0.0)
    if expected > 0 and gain < p.verify_gain * expected:
        note = f"last scale-up {a.from_}->{a.to} ineffective: consume rate +{gain:.0f}/s, expected +{expected:.0f}/s"
        return replace(memory, verified=False, ineffective_until=now + p.ineffective_hold), note
    return replace(memory, verified=True), f"last scale-up verified: consume rate +{gain:.0f}/s"


FLAT = 1.25  # the short window's consume rate at most this times the window's: the rate has levelled off


def _behind(inputs: Inputs, target: TargetConfig, unsettled: bool) -> bool:
    """Falling behind on the short window: the backlog stayed above busy_backlog and grew while the
    consume rate is flat (the short window's not above FLAT x the window's), the replicas settled. The
    consumers then work as fast as they can: their rate is their capacity."""
    p = target.policy
    short = short_window_of(p.window, p.short_window)
    return (
        not unsettled
        and inputs.short_min_backlog is not None
        and inputs.short_min_backlog >= p.busy_backlog
        and (inputs.backlog_growth or 0.0) > 0
        and bool(inputs.short_consume_rate)
        and bool(inputs.consume_rate)
        and (inputs.short_consume_rate or 0.0) <= FLAT * (inputs.consume_rate or 0.0)
        and inputs.short_span >= 0.8 * short
    )


def _capacity(
    inputs: Inputs, current: int, target: TargetConfig, memory: Memory, now: float
) -> tuple[float | None, bool, float | None, str]:
    """(capacity per replica, saturated, observed per replica, where the capacity comes from)."""
    p = target.policy
    saturated = inputs.min_backlog is not None and inputs.min_backlog >= p.busy_backlog
    replicas = current
    observed = None
    unsettled = memory.last_action is not None and memory.rebalance_seconds is None
    # A fresh measurement needs a whole window of readings at this replica count (commits come in batches,
    # and the first seconds after a handover are not representative), as FLIP-271 waits out its window.
    if inputs.consume_rate is not None and replicas > 0 and inputs.span >= 0.9 * p.window and not unsettled:
        observed = inputs.consume_rate / replicas
        if inputs.busy_ratio:
            return observed / inputs.busy_ratio, saturated, observed, "busy ratio"
    if saturated and observed:
        return observed, saturated, observed, "measured"
    fresh = (
        memory.capacity is not None
        and memory.capacity_at is not None
        and now - memory.capacity_at <= p.capacity_max_age
    )
    # No capacity to trust (none yet, or a stale one) while the consumers fall behind: what they manage
    # is what they can do. It sizes this step at once instead of a window later. The lower of the two
    # rates: a short window over batch commits can read high, and a capacity read high sizes too few
    # replicas now and a scale-down too deep later.
    if not fresh and p.per_replica_rate is None and replicas > 0 and _behind(inputs, target, unsettled):
        rate = min(inputs.short_consume_rate or 0.0, inputs.consume_rate or 0.0)
        return rate / replicas, saturated, observed, "short window"
    # Keeping up, the observed rate is only a lower bound of the capacity: alone it would always ask
    # for current / target_utilization replicas. It can raise a capacity known otherwise, not found one.
    known = [c for c in (memory.capacity, p.per_replica_rate) if c]
    if not known:
        return None, saturated, observed, ""
    best = max([*known, observed or 0.0])
    source = (
        "remembered" if best == memory.capacity else ("hint" if best == p.per_replica_rate else "keeping up")
    )
    return best, saturated, observed, source


def _urgency(inputs: Inputs, target: TargetConfig, drain_in: float) -> str | None:
    """Why the backlog cannot wait for the window, or None: above busy_backlog, and at the short window's
    pace it grows, or drains slower than within drain_in."""
    growth = inputs.backlog_growth
    if growth is None or inputs.backlog < target.policy.busy_backlog:
        return None
    if growth >= 0:
        return f"urgent: backlog {inputs.backlog} growing {growth:.0f}/s"
    takes = inputs.backlog / -growth
    if takes > drain_in:
        return f"urgent: backlog {inputs.backlog} drains in {takes:.0f}s at this pace, not within {drain_in:.0f}s"
    return None


def evaluate(
    inputs: Inputs,
    now: float,
    current: int,
    target: TargetConfig,
    memory: Memory | None = None,
    name: str = "",
) -> tuple[Decision, Memory]:
    if target.mode == "keda":
        from watchtower.scale.keda_mode import evaluate_keda

        return evaluate_keda(inputs, now, current, target, memory or Memory(), name)
    p = target.policy
    memory = memory or Memory(
        recommendations=((now, current),)
    )  # a new controller holds its count one window
    info: dict[str, Any] = {
        "mode": "capacity",
        "partitions": inputs.partitions,
        "stuck_partitions": list(inputs.stuck),
    }
    if not inputs.has_data or inputs.input_rate is None:
        d = Decision(name, now, current, current, "not enough readings in the window yet", "no_data", info)
        return d, memory
    memory = _observe_rebalance(memory, inputs, now, p.verify_after)
    capacity, saturated, observed, source = _capacity(inputs, current, target, memory, now)
    memory, verify_note = _verify(memory, inputs, now, target, saturated)
    if capacity is not None and (
        source in ("measured", "busy ratio", "short window")
        or memory.capacity is None
        or capacity > memory.capacity
    ):
        memory = replace(memory, capacity=capacity, capacity_at=now)
    info.update(
        input_rate=inputs.input_rate,
        consume_rate=inputs.consume_rate,
        backlog_messages=inputs.backlog,
        backlog_seconds=inputs.backlog_seconds,
        saturated=saturated,
        observed_per_replica=observed,
        capacity_per_replica=capacity,
        capacity_source=source or None,
        members=inputs.members,
        group_state=inputs.group_state,
        short_input_rate=inputs.short_input_rate,
        backlog_growth=inputs.backlog_growth,
    )
    lower, upper = _bounds(target, inputs.partitions)
    rebalance = memory.rebalance_seconds if memory.rebalance_seconds is not None else p.rebalance_time
    drain_in = max(p.catch_up - rebalance, p.catch_up / 2)
    urgent = _urgency(inputs, target, drain_in)
    rate, backlog = inputs.input_rate, inputs.backlog
    if urgent:
        # The window's rate lags a burst by up to a window: take the short window's when higher. The
        # backlog keeps growing until the new replicas have their partitions: size for that too (FLIP-271
        # adds the input during the restart), so the backlog drains within catch_up of the action.
        rate = max(rate, inputs.short_input_rate or 0.0)
        backlog += round(max(0.0, inputs.backlog_growth or 0.0) * rebalance)
    need = rate + backlog / drain_in
    required: int | None
    if inputs.input_rate <= p.idle_rate and inputs.backlog == 0:
        required, why = lower, "idle: no input and no backlog over the window"
    elif capacity is None:
        required, why = current, "holding: capacity per replica not measured yet and the consumers keep up"
    else:
        required = max(1, math.ceil(need / (capacity * p.target_utilization) - 1e-9))
        why = (
            f"need {need:.0f}/s (input {rate:.0f}/s + backlog {backlog} / {drain_in:.0f}s) "
            f"at {capacity:.0f}/s per replica x {p.target_utilization:g}"
        )
        if source == "short window":
            why += " (falling behind: the short window's rate)"
        if urgent:
            why = f"{urgent}; {why}"
    capped = required > inputs.partitions
    info.update(need_rate=need, required=required, partitions_capped=capped, urgent=bool(urgent))
    rec = max(lower, min(required, upper))
    recs = tuple((at, r) for at, r in memory.recommendations if at >= now - p.scale_down_stabilization) + (
        (now, rec),
    )
    memory = replace(memory, recommendations=recs)
    # Down only once the recommendation is the highest of the whole window (it has settled: one drop in
    # load is one action, not a staircase down the window's decaying recommendations), and to it.
    stable = _stabilized(recs, now, p.scale_down_stabilization)
    want = rec if rec >= current else (rec if stable <= rec else current)
    if want > current:
        want = min(want, current + p.max_step_up)
    elif want < current:
        want = max(want, current - p.max_step_down)
    info["recommendation"] = rec
    if capped:
        why += f"; partitions cap the scale-out ({required} needed, {inputs.partitions} partitions)"
    if rec < want <= current:
        why += f"; scale-down stabilizing ({stable} recommended within {p.scale_down_stabilization:.0f}s)"
    if verify_note:
        why += f"; {verify_note}"
    veto = None if want == current else _hold(inputs, now, current, want, target, memory, bool(urgent))
    if veto is not None:
        why += f"; held: {veto[1]}"
    elif want > current and memory.last_action is not None and memory.rebalance_seconds is None:
        why += (
            f"; the last action's handover has lasted {now - memory.last_action.at:.0f}s "
            f"> rebalance_time {p.rebalance_time:.0f}s: not waiting for it"
        )
    return Decision(name, now, current, want, why, veto[0] if veto else None, info), memory


def _hold(
    inputs: Inputs,
    now: float,
    current: int,
    want: int,
    target: TargetConfig,
    memory: Memory,
    urgent: bool = False,
) -> tuple[str, str] | None:
    s = target.sink
    if inputs.group_state in REBALANCING_STATES:
        return "rebalancing", f"the group is {inputs.group_state}"
    a = memory.last_action
    if a is not None and memory.rebalance_seconds is None:
        # Replicas the last action added or removed are not in effect until the handover is over:
        # acting again on the backlog that built meanwhile would overshoot. Unless the backlog cannot
        # wait and the handover has taken longer than one should: a stuck handover must not block an
        # urgent step forever (the cooldown below still holds).
        if not (urgent and want > current and now - a.at > target.policy.rebalance_time):
            return "rebalancing", "the last action's partitions are still being handed over"
    if a is not None and now - a.at < _cooldown(target, memory):
        return "cooldown", f"last action {now - a.at:.0f}s ago, cooldown {_cooldown(target, memory):.0f}s"
    if want <= current:
        return None
    sink = inputs.sink
    if sink.redis_write_latency is not None and sink.redis_write_latency > s.redis_write_latency_max:
        return (
            "sink_backpressure",
            f"Redis write latency {sink.redis_write_latency * 1000:.0f}ms > {s.redis_write_latency_max * 1000:.0f}ms",
        )
    trigger = s.spark_trigger_interval
    if (
        sink.spark_batch_seconds is not None
        and trigger
        and sink.spark_batch_seconds > trigger * s.spark_batch_over_trigger
    ):
        return (
            "sink_backpressure",
            f"Spark batch {sink.spark_batch_seconds:.1f}s > {s.spark_batch_over_trigger:g} x trigger {trigger:g}s",
        )
    if sink.flink_backpressure is not None and sink.flink_backpressure > s.flink_backpressure_max:
        return (
            "sink_backpressure",
            f"Flink backpressure {sink.flink_backpressure:.2f} > {s.flink_backpressure_max:g}",
        )
    if memory.ineffective_until is not None and now < memory.ineffective_until:
        return (
            "ineffective_step",
            f"the last scale-up did not raise the consume rate; holding until {memory.ineffective_until - now:.0f}s from now",
        )
    return None


def decide(
    history: History,
    now: float,
    current: int,
    target: TargetConfig,
    memory: Memory | None = None,
    name: str = "",
) -> Decision:
    """One decision from the history (the sink's Redis latency, which the controller probes, not included)."""
    inputs = gather(
        history,
        now,
        group=target.group,
        topic=target.topic,
        window=target.policy.window,
        stuck_after=target.policy.stuck_after,
        collector=target.collector,
        rates_since=settled_at(memory),
        short_window=target.policy.short_window,
    )
    return evaluate(inputs, now, current, target, memory, name)[0]
