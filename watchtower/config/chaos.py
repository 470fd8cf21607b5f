"""The `chaos:` config section, and the safety rule: chaos runs only against the embedded stack unless the
target's bootstrap servers are listed in `chaos.allow`. Validation only; pure."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

# The shipped scenarios and chaos rules: the repository's top-level chaos/ package, installed as package
# data next to watchtower/ (site-packages, or the checkout for an editable install), so `watchtower chaos
# list` works from any directory. Found by location, not by importing `chaos`: a test directory of that
# name on sys.path would shadow it.
PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "chaos"


def packaged(part: str) -> Path:
    """`scenarios` or `rules` of the installed chaos package."""
    return PACKAGE_ROOT / part


class ChaosConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Bootstrap servers (exactly as configured in kafka.bootstrap_servers) chaos may run against besides
    # the embedded stack. Empty: the embedded stack only.
    allow: tuple[str, ...] = ()
    # Default: the shipped ones (packaged with watchtower); a configured path replaces them.
    scenarios: Path = Field(default_factory=lambda: packaged("scenarios"))
    rules: Path = Field(default_factory=lambda: packaged("rules"))
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
