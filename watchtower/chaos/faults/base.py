"""The fault seam: one Protocol, a registry by name, and what a fault may touch (`FaultContext`).

A fault module defines its params model (pydantic, validated by `watchtower chaos check`) and a class with
`start` and `stop`, and registers both with `@register("name", Params)`.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from watchtower.chaos.inject import Injector
from watchtower.config.models import PipelineConfig


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FaultError(RuntimeError):
    """A fault could not be applied (the run records it and rolls back)."""


@dataclass
class FaultContext:
    """What a fault may use. `pid(target)` gives the pid of `broker`, `redis`, `spark` or `daemon` (None:
    not running); `restart(target)` starts a killed one again and waits until it is up; `firing()` is the
    set of rules the daemon's /api/v1/alerts lists as firing now (empty while it does not answer)."""

    injector: Injector
    pipeline: PipelineConfig
    pid: Callable[[str], int | None]
    restart: Callable[[str], None]
    now_ms: Callable[[], int]
    fail_pages: Callable[[int, float], None] = lambda status, seconds: (
        None
    )  # the page receiver answers `status`
    redis_url: str = ""  # the stack's Redis (the enricher workers' state)
    workers_group: str = ""
    firing: Callable[[], frozenset[str]] = lambda: frozenset()
    notes: list[dict[str, Any]] = field(default_factory=list)  # what the faults did, for the journal

    def note(self, **fields: Any) -> None:
        self.notes.append(fields)


class Fault(Protocol):
    """One fault. `start` applies it: it may block while it injects (seconds), does I/O and raises
    FaultError when it cannot. `stop` undoes it (continue a stopped process, restart a killed one); it is
    idempotent and never raises, because it runs from rollbacks, also after Ctrl-C or SIGTERM. Data faults,
    which leave nothing to undo, have a `stop` that does nothing.

    A fault may also have `verify(ctx) -> list[str]`: its own read-back after the method (problems; empty
    when fine), for state the conservation verdict does not cover (the enricher workers' Redis counts)."""

    def start(self, ctx: FaultContext) -> None: ...

    def stop(self, ctx: FaultContext) -> None: ...


FaultFactory = Callable[[Any], Fault]
FAULTS: dict[str, tuple[type[Params], FaultFactory]] = {}


def register(name: str, params: type[Params]) -> Callable[[FaultFactory], FaultFactory]:
    def deco(factory: FaultFactory) -> FaultFactory:
        FAULTS[name] = (params, factory)
        return factory

    return deco


def build(name: str, raw: dict[str, Any]) -> Fault:
    params_model, factory = FAULTS[name]
    return factory(params_model.model_validate(raw))


def params_models() -> dict[str, type[BaseModel]]:
    return {name: p for name, (p, _) in FAULTS.items()}


def send_signal(pid: int | None, sig: signal.Signals) -> bool:
    """Signal a process (and say whether it was there); never raises."""
    if pid is None:
        return False
    try:
        import os

        os.kill(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False
