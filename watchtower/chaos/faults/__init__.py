"""Fault primitives, one small module each, registered by name in `base.FAULTS` when imported here."""

from watchtower.chaos.faults import (  # noqa: F401 - registration
    clock_skew,
    crash_commit,
    duplicates,
    kill_process,
    kill_worker,
    late_events,
    malformed,
    page_errors,
    pause_process,
    schema_drift,
    traffic,
)
from watchtower.chaos.faults.base import FAULTS, Fault, FaultContext, FaultError, build, params_models

__all__ = ["FAULTS", "Fault", "FaultContext", "FaultError", "build", "params_models"]
