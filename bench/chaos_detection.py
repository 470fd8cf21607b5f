"""Time from fault start to the first page, per fault kind, through the real chaos environment.

    .venv/bin/python bench/chaos_detection.py [--trials 3] [--scenarios late-beyond-watermark ...]

Starts one chaos environment (embedded stack, Spark job, daemon with chaos/rules at 1 s collection and
evaluation, local page receiver; docs/chaos.md), then runs every scenario that expects an alert `--trials`
times and prints, per scenario (fault kind) and rule, p50 and max of the seconds from the fault start to
the FIRING page the receiver got, and how many trials failed any verdict. The load average is printed:
the machine is shared and the Spark job's batch time depends on it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from watchtower.chaos.env import ChaosEnv
from watchtower.chaos.faults import params_models
from watchtower.chaos.runner import ScenarioRunner
from watchtower.chaos.scenario import check_scenarios
from watchtower.settings import WatchtowerConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument(
        "--scenarios", nargs="*", default=None, help="names (default: every scenario expecting an alert)"
    )
    args = ap.parse_args()
    os.environ.pop("REDIS_URL", None)
    cfg = WatchtowerConfig()
    scenarios, problems = check_scenarios(cfg.chaos.scenarios, params_models())
    if problems:
        raise SystemExit("\n".join(problems))
    chosen = [
        s for s in scenarios if s.expect.alerts and (args.scenarios is None or s.name in args.scenarios)
    ]
    root = Path(tempfile.mkdtemp(prefix="wt-chaos-bench-"))
    cfg = cfg.model_copy(update={"stack": cfg.stack.model_copy(update={"state_dir": root})})
    env = ChaosEnv(cfg, root / "chaos")
    times: dict[tuple[str, str], list[float]] = {}
    failed: dict[str, int] = {}
    load = []
    t0 = time.monotonic()
    try:
        env.start()
        runner = ScenarioRunner(env, threading.Event())
        for trial in range(args.trials):
            for sc in chosen:
                res = runner.run(sc)
                load.append(os.getloadavg()[0])
                if not res.ok:
                    failed[sc.name] = failed.get(sc.name, 0) + 1
                for a in res.detection.alerts if res.detection else ():
                    if a.fired_after is not None:
                        times.setdefault((sc.name, a.rule), []).append(a.fired_after)
                print(
                    f"trial {trial + 1} {sc.name}: {'pass' if res.ok else 'FAIL'} "
                    f"{res.detection.summary() if res.detection else ''}",
                    flush=True,
                )
    finally:
        env.stop()
    print(
        f"\n{args.trials} trials, {time.monotonic() - t0:.0f} s, load average {min(load, default=0):.1f}-{max(load, default=0):.1f}"
    )
    print("| scenario (fault) | rule | p50 s | max s | pages / trials | failed trials |")
    print("| --- | --- | --- | --- | --- | --- |")
    for sc in chosen:
        for a in sc.expect.alerts:
            ts = times.get((sc.name, a.rule), [])
            p50 = f"{statistics.median(ts):.1f}" if ts else "-"
            mx = f"{max(ts):.1f}" if ts else "-"
            print(
                f"| {sc.name} | {a.rule} | {p50} | {mx} | {len(ts)}/{args.trials} | {failed.get(sc.name, 0)} |"
            )


if __name__ == "__main__":
    main()
