"""One load profile, two scaling policies, the real enricher workers: KEDA's formula vs watchtower's capacity policy.

    .venv/bin/python bench/scaling_profile.py                 # both modes, one after the other
    .venv/bin/python bench/scaling_profile.py --mode keda --lag-threshold 100

Embedded broker and redis-server, 6 partitions, enricher workers capped at --cap records/s each (the
stand-in for costly enrichment: capacity then grows with the worker count on a small machine), the
daemon's lag collector at 1 s and the scaling controller with the local pool actuator. Profile (rate,
seconds): base, a 3x step held, back to base, a 6x burst, base, idle. Both modes get the same scale-down
stabilization (--stabilization, shorter than HPA's 300 s so the profile fits in minutes) and start at one
worker. Reported per mode:

- time over the lag SLA: seconds during which the group's largest lag in seconds exceeded --sla;
- max lag seconds;
- scaling actions (applied replica changes);
- replica-seconds: the integral of the running worker count over the profile.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration" / "scale"))

from autoscale_support import autoscaled, group_lag, run_load, scaling_config, wait_for  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from watchtower.stack.broker import EmbeddedBroker  # noqa: E402
from watchtower.stack.redis_server import LocalRedis  # noqa: E402


def profile(base: float) -> list[tuple[float, float]]:
    return [(base, 20.0), (3 * base, 60.0), (base, 40.0), (6 * base, 10.0), (base, 30.0), (0.0, 40.0)]


def run_mode(mode: str, bootstrap: str, redis_url: str, args: argparse.Namespace, tag: str) -> dict:
    topic, group = f"bench-scale-{tag}-{mode}", f"bench-scale-{tag}-{mode}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(topic, 6, 1)], operation_timeout=30).values():
        fut.result(60)
    target = {
        "mode": mode,
        "policy": {
            "window": 15,
            "catch_up": args.catch_up or args.sla,
            "busy_backlog": 300,
            "scale_down_stabilization": args.stabilization,
            "cooldown": 5,
            "verify_after": 30,
            "stuck_after": 30,
            "max_step_down": 6,
            "per_replica_rate": args.per_replica_rate,
        },
        "keda": {"lag_threshold": args.lag_threshold, "scale_down_stabilization": args.stabilization},
    }
    scaling = scaling_config(group, topic, redis_url, **target)
    phases = profile(args.base)
    with autoscaled(bootstrap, redis_url, topic, group, scaling, max_rate=args.cap) as stack:
        wait_for(lambda: stack.status()["current"] == 1, 60, "the controller to see the pool")
        stop = threading.Event()
        loader = threading.Thread(target=lambda: _load(bootstrap, topic, phases, stop))
        started = time.time()
        loader.start()
        over = replica_seconds = max_lag_s = 0.0
        stretches: list[list[int]] = []  # [first, last] second into the profile over the SLA
        last = started
        seen: dict[float, int] = {}  # every action's time -> replicas it asked for
        while loader.is_alive():
            time.sleep(1.0)
            now = time.time()
            seen.update((a["at"], a["to"]) for a in stack.status()["recent_actions"])
            _, seconds = group_lag(stack, group, topic)
            dt = now - last
            replica_seconds += stack.pool.size * dt
            if seconds is not None:
                max_lag_s = max(max_lag_s, seconds)
                if seconds > args.sla:
                    over += dt
                    at = round(now - started)
                    if stretches and at - stretches[-1][1] <= 2:
                        stretches[-1][1] = at
                    else:
                        stretches.append([at, at])
            last = now
        loader.join()
        status = stack.status()
        seen.update((a["at"], a["to"]) for a in status["recent_actions"])
    # An action re-asks for the count it asked for last while the pool's published size still lags (the
    # local pool reports its running processes, not the requested count): count the changes of target too.
    asked = [to for _, to in sorted(seen.items())]
    changes = sum(1 for i, to in enumerate(asked) if i == 0 or to != asked[i - 1])
    return {
        "mode": mode,
        "time_over_sla_s": round(over, 1),
        "max_lag_s": round(max_lag_s, 1),
        "actions": sum(status["actions"].values()),
        "target_changes": changes,
        "replica_seconds": round(replica_seconds),
        "vetoes": status["vetoes"],
        "elapsed_s": round(time.time() - started),
        # (seconds into the profile, from, to): where each action fell against the phases
        "over_sla": [tuple(x) for x in stretches],
        "timeline": [(round(a["at"] - started), a["from"], a["to"]) for a in status["recent_actions"]],
        "reasons": [f"{round(a['at'] - started)}s: {a['reason']}" for a in status["recent_actions"]],
    }


def _load(bootstrap: str, topic: str, phases: list[tuple[float, float]], stop: threading.Event) -> None:
    busy = []
    for rate, seconds in phases:
        if rate > 0:
            busy.append((rate, seconds))
            continue
        if busy:
            run_load(bootstrap, topic, busy, stop)
            busy = []
        stop.wait(seconds)
    if busy:
        run_load(bootstrap, topic, busy, stop)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["keda", "capacity", "both"], default="both")
    ap.add_argument("--base", type=float, default=100.0, help="base load, records/s")
    ap.add_argument("--cap", type=float, default=200.0, help="records/s one worker processes at most")
    ap.add_argument("--sla", type=float, default=10.0, help="lag SLA, seconds")
    ap.add_argument(
        "--stabilization", type=float, default=30.0, help="scale-down stabilization of both modes, seconds"
    )
    ap.add_argument(
        "--catch-up", type=float, default=None, help="capacity policy's catch_up, seconds (default: the SLA)"
    )
    ap.add_argument(
        "--per-replica-rate",
        type=float,
        default=None,
        help="capacity hint for the capacity policy (default: measure)",
    )
    ap.add_argument("--reasons", action="store_true", help="print each action's reason")
    ap.add_argument("--lag-threshold", type=int, default=100, help="KEDA lagThreshold (KEDA's default is 10)")
    args = ap.parse_args()
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"wt-bench-scale-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    broker = EmbeddedBroker(log_path=tmp / "tansu.log", die_with_parent=True).start()
    server = LocalRedis(workdir=tmp / "redis", die_with_parent=True).start()
    tag = str(int(time.time()))
    try:
        modes = ["keda", "capacity"] if args.mode == "both" else [args.mode]
        results = [run_mode(m, broker.bootstrap_servers, server.url, args, tag) for m in modes]
    finally:
        server.stop()
        broker.stop()
    print(
        f"profile {profile(args.base)}; cap {args.cap:g}/s per worker; SLA {args.sla:g}s; "
        f"stabilization {args.stabilization:g}s; catch_up {args.catch_up or args.sla:g}s; KEDA lagThreshold {args.lag_threshold}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print("| mode | time over SLA (s) | max lag (s) | actions (target changes) | replica-seconds | vetoes |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['mode']} | {r['time_over_sla_s']} | {r['max_lag_s']} | {r['actions']} ({r['target_changes']}) | {r['replica_seconds']} | {r['vetoes'] or '-'} |"
        )
    for r in results:
        print(f"{r['mode']} actions (s into the profile, from, to; the last 20): {r['timeline']}")
        print(f"{r['mode']} over the SLA (s into the profile): {r['over_sla']}")
        if args.reasons:
            print("\n".join(f"  {line}" for line in r["reasons"]))


if __name__ == "__main__":
    main()
