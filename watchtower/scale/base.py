"""The scaling seam: what a decision is, and what an actuator does with it.

The policy (`decide(...)`, pure, no I/O) returns a `Decision`; an `Actuator` reads the current replica
count of one target and applies a new one. Actuators are registered by kind (local worker pool,
Kubernetes scale subresource, Flink REST, dry-run) and built from `scaling.targets` in the config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy wants for one target at time `at`, and why.

    `desired` is already bounded (min/max replicas, partitions, max step); `veto` names the guard that
    held a change back (`sink_backpressure`, `rebalancing`, `ineffective_step`, ...) or is None.
    `inputs` are the windowed numbers the decision used, for `/api/v1/scaling` and the logs.
    """

    target: str
    at: float
    current: int
    desired: int
    reason: str
    veto: str | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def changes(self) -> bool:
        return self.desired != self.current and self.veto is None


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What an actuator did: `applied` replicas now requested, `how` it got there (for Flink: `rescale`
    through the adaptive scheduler or `savepoint-restart`), `error` when it could not."""

    target: str
    requested: int
    applied: int | None
    how: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@runtime_checkable
class Actuator(Protocol):
    """Applies replica counts to one target.

    `current()` does I/O and may block up to the actuator's own timeout; it raises `ActuatorError` when
    the target cannot be read. `apply(n)` does I/O; it returns an `ApplyResult` and never raises for a
    refusal of the target system (that is `ApplyResult.error`). `close()` releases clients, never raises.
    Building an actuator makes no connection.
    """

    name: str

    def current(self) -> int: ...

    def apply(self, replicas: int) -> ApplyResult: ...

    def close(self) -> None: ...


class ActuatorError(RuntimeError):
    """The target could not be read or reached; the message names it and never carries a secret."""


@runtime_checkable
class FencedActuator(Actuator, Protocol):
    """An actuator whose target refuses a deposed leader's write: `apply_fenced` carries the leader's
    fencing token (from `LeaderGate.holds()`), and the target keeps the highest token it has accepted,
    refusing any lower one (`ApplyResult.error`). The controller prefers it over `apply` when present."""

    def apply_fenced(self, replicas: int, token: int) -> ApplyResult: ...
