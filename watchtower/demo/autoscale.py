"""`watchtower demo --autoscale`: the load profile, the capped workers and the scaling target of the demo.

The generator steps from the base rate to three times it and back; each worker processes at most
`base / 0.6` records/s, so one worker carries the base load and the step needs three. The daemon's
controller (capacity policy, short windows) writes the desired count; the demo's pool follows it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from watchtower.scale.config import ScalingConfig

TARGET = "demo-enricher"
DEFAULT_BASE_RATE = 300.0
BASE_UTILIZATION = 0.6


def phases(base: float, total: float | None = None) -> list[tuple[float, float]]:
    """(rate, seconds): base, a 3x step, base again long enough for the stabilization window, then idle;
    stretched or squeezed to `total` seconds when given."""
    profile = [(base, 30.0), (3 * base, 60.0), (base, 75.0), (0.0, 30.0)]
    if total is None:
        return profile
    factor = total / sum(s for _, s in profile)
    return [(rate, seconds * factor) for rate, seconds in profile]


def worker_max_rate(base: float) -> float:
    return base / BASE_UTILIZATION


def scaling_config(group: str, topic: str, redis_url: str, partitions: int) -> ScalingConfig:
    return ScalingConfig.model_validate(
        {
            "targets": {
                TARGET: {
                    "group": group,
                    "topic": topic,
                    "interval": 2.0,
                    "min_replicas": 1,
                    "max_replicas": partitions,
                    "actuator": {"kind": "local_pool", "redis_url": redis_url},
                    "policy": {
                        "window": 15,
                        "catch_up": 30,
                        "busy_backlog": 500,
                        "scale_down_stabilization": 30,
                        "cooldown": 10,
                        "verify_after": 30,
                        "stuck_after": 30,
                        "max_step_down": partitions,
                    },
                }
            }
        }
    )


def run_phases(generator, profile: Sequence[tuple[float, float]], stop: threading.Event, on_phase=None):
    """Produce each (rate, seconds) in turn (a zero rate waits); the markers once at the end."""
    for rate, seconds in profile:
        if stop.is_set():
            break
        if on_phase is not None:
            on_phase(rate)
        if rate <= 0:
            stop.wait(seconds)
            continue
        generator.config = generator.config.model_copy(update={"rate": rate})
        generator.run(duration=seconds, stop_event=stop, finish=False)
    generator.finish()
    return generator.manifest
