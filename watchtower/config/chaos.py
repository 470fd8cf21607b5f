"""The `chaos:` config section, and the safety rule: chaos runs only against the embedded stack unless the
target's bootstrap servers are listed in `chaos.allow`. Validation only; pure."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ChaosConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Bootstrap servers (exactly as configured in kafka.bootstrap_servers) chaos may run against besides
    # the embedded stack. Empty: the embedded stack only.
    allow: tuple[str, ...] = ()
    scenarios: Path = Path("chaos/scenarios")
    rules: Path = Path("chaos/rules")
    # Background traffic while scenarios run, events/s: gives the lag and latency probes something to see.
    background_rate: float = Field(default=50.0, ge=0)


def target_refusal(configured_bootstrap: str | None, allow: tuple[str, ...]) -> str | None:
    """Why a run must not start (None: it may). No configured servers means the embedded stack."""
    if not configured_bootstrap:
        return None
    if configured_bootstrap in allow:
        return None
    return (
        f"kafka.bootstrap_servers is {configured_bootstrap!r}, which is not the embedded stack: chaos kills and pauses "
        "processes and writes faulty records. Unset it to use the embedded stack, or list it in chaos.allow"
    )
