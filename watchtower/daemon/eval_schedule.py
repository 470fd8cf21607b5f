"""When the alert evaluator runs, and what: a pure function of monotonic times, tested with a table.

Two triggers:
* the **timer**, every `interval`: the lifecycle step and every rule no reading ran within the last
  interval (the *stale* rules), so what only time moves (`for`, `keep_firing_for`, group and repeat
  intervals, no data / staleness) advances even when no reading arrives;
* **readings**: a collector published a reading; the rules that read its metrics run at once. Readings that
  arrive while an evaluation runs, or while the loop waits, are coalesced into the next one.

Rule evaluations are bounded so a fast collector (or a costly rule set) cannot starve the loop or the
CPU: after a cycle that ran rules on `c` seconds of the evaluator thread's CPU time, the next one that runs
rules waits `c * (1 - busy) / busy` (at least `min_gap`), so rules take at most about a `busy` share of
the CPU (CPU, not wall time: a cycle blocked on a hung Redis must not hold back the one after it). The
timer is never delayed: a tick inside that pause steps the lifecycle on the last results (cheap) and runs
no rule. It then *owes* its stale rules: the next cycle that runs rules (readings allowed by the budget,
or the budget's end when no reading waits) runs them too, so a rule no reading touches (a silent or dead
collector's, whose no-data alert must rise) is not starved while a fast collector keeps the budget
saturated. That cycle's CPU counts toward the budget like any other.
Timer ticks missed because an evaluation ran past them are counted (overruns), not made up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Action = Literal["timer", "readings", "wait"]


@dataclass(frozen=True, slots=True)
class Plan:
    action: Action
    wait: float = 0.0  # for "wait": how long until something may be due (readings may come sooner)
    rules: bool = True  # whether the cycle runs rules (False: a timer tick inside the busy pause)
    stale: bool = False  # whether it runs the stale rules (the timer's selection) besides the fresh ones


def plan(now: float, *, next_tick: float, pending: bool, ready_at: float, owed: bool = False) -> Plan:
    """What to do at `now`: the timer's cycle when due (with rules only within the budget), else, once
    the budget allows, the pending readings' cycle, with the stale rules a step-only tick `owed`."""
    if now >= next_tick:
        within = now >= ready_at
        return Plan("timer", rules=within, stale=within)
    if (pending or owed) and now >= ready_at:
        return Plan("readings", stale=owed)
    until = next_tick if not (pending or owed) else min(next_tick, ready_at)
    return Plan("wait", max(0.0, until - now))


def owes(plan: Plan, owed: bool) -> bool:
    """Whether the stale rules are still owed after running `plan`: a step-only tick owes them until
    a cycle runs them."""
    if plan.action == "timer" and not plan.rules:
        return True
    return owed and not plan.stale


def reading_gap(cpu: float, busy: float, min_gap: float = 0.0) -> float:
    """Pause after a cycle that ran rules on `cpu` seconds of CPU before the next one that runs rules may
    start: keeps rules under `busy` of the evaluator's CPU."""
    if not 0 < busy <= 1:
        raise ValueError("busy must be in (0, 1]")
    return max(min_gap, cpu * (1.0 - busy) / busy)


def next_tick(due: float, now: float, interval: float) -> tuple[float, int]:
    """The timer tick after the one due at `due`, as of `now` (its evaluation just ended), and how many
    ticks were missed.

    Ticks stay on the grid `due + k * interval`; ticks that passed while that evaluation was late or ran
    are skipped (counted as overruns), not run back to back.
    """
    late = max(0.0, now - due)
    missed = math.floor(late / interval)
    return due + (missed + 1) * interval, missed
