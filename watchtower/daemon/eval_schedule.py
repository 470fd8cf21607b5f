"""When the alert evaluator runs, and what: a pure function of monotonic times, tested with a table.

Two triggers:
* the **timer**, every `interval`: the lifecycle step and every rule no reading ran within the last
  interval, so what only time moves (`for`, `keep_firing_for`, group and repeat intervals, no data /
  staleness) advances even when no reading arrives;
* **readings**: a collector published a reading; the rules that read its metrics run at once. Readings that
  arrive while an evaluation runs, or while the loop waits, are coalesced into the next one.

Rule evaluations are bounded so a fast collector (or a costly rule set) cannot starve the loop or the
CPU: after an evaluation that took `d` seconds the next one that runs rules waits `d * (1 - busy) / busy`
(at least `min_gap`), so they take at most about a `busy` share of the evaluator's time. The timer is
never delayed: a tick inside that pause steps the lifecycle on the last results (cheap) and runs no rule.
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


def plan(now: float, *, next_tick: float, pending: bool, ready_at: float) -> Plan:
    """What to do at `now`: the timer's evaluation when due, else the pending readings' when allowed."""
    if now >= next_tick:
        return Plan("timer")
    if pending and now >= ready_at:
        return Plan("readings")
    until = next_tick if not pending else min(next_tick, ready_at)
    return Plan("wait", max(0.0, until - now))


def reading_gap(last_duration: float, busy: float, min_gap: float = 0.0) -> float:
    """Pause after an evaluation before a reading-driven one may start: keeps them under `busy` of the time."""
    if not 0 < busy <= 1:
        raise ValueError("busy must be in (0, 1]")
    return max(min_gap, last_duration * (1.0 - busy) / busy)


def next_tick(due: float, now: float, interval: float) -> tuple[float, int]:
    """The timer tick after the one due at `due`, as of `now` (its evaluation just ended), and how many
    ticks were missed.

    Ticks stay on the grid `due + k * interval`; ticks that passed while that evaluation was late or ran
    are skipped (counted as overruns), not run back to back.
    """
    late = max(0.0, now - due)
    missed = math.floor(late / interval)
    return due + (missed + 1) * interval, missed
