"""The default actuator: applies nothing anywhere, remembers the count it was asked for.

Decisions, metrics and `/api/v1/scaling` behave as if each decision had been applied, so a dry run
shows the sequence of actions the policy would take.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from watchtower.scale.base import ApplyResult


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["dry_run"] = "dry_run"
    # The replica count the simulation starts from.
    replicas: int = Field(default=1, ge=0)


class DryRunActuator:
    def __init__(self, name: str, replicas: int = 1):
        self.name = name
        self.replicas = replicas
        self.applied: list[int] = []

    def current(self) -> int:
        return self.replicas

    def apply(self, replicas: int) -> ApplyResult:
        self.replicas = replicas
        self.applied.append(replicas)
        return ApplyResult(self.name, replicas, replicas, how="dry-run")

    def close(self) -> None:
        pass


def build(target_name: str, config: Config) -> DryRunActuator:
    return DryRunActuator(target_name, config.replicas)
