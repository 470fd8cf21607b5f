"""Breach -> notification and resolve, watchtower's own rules against Prometheus + Alertmanager, side by side.

    .venv/bin/python bench/detection_vs_prometheus.py                         # 20 tuned trials, 1 s lag interval
    .venv/bin/python bench/detection_vs_prometheus.py --adaptive              # lag interval follows its cost
    .venv/bin/python bench/detection_vs_prometheus.py --trials 0 --default-trials 3   # upstream defaults
    .venv/bin/python bench/detection_vs_prometheus.py --restart-prometheus    # new Prometheus timers per trial

One embedded broker, one local redis-server, `watchtower run` (a subprocess), a real Prometheus
(`/usr/bin/prometheus`) scraping watchtower's `/metrics` and a real Alertmanager
(`/usr/bin/prometheus-alertmanager`), their config files written here. Both paths watch the same breach:
a stopped consumer group on a one-partition topic, lag 50 (at the bound) -> 51 with single-record batches.

* watchtower: rule `max by (group) lag > 50`, `for: 0s`, group_wait 0, webhook notifier -> this bench;
* Prometheus: `max by (group) (watchtower_consumer_lag_messages) > 50`, `for: 0s` -> Alertmanager
  (webhook receiver -> this bench, send_resolved). **tuned**: scrape and evaluation 1 s, group_wait 0 s,
  group_interval 1 s; **default**: upstream defaults (1 m, 1 m, group_wait 30 s, group_interval 5 m).

Each trial: 50 records, wait until both watchtower and Prometheus show lag 50 (and one more evaluation),
then sleep a random time in [0, period) so the breach starts at a random phase against every timer
(lag collection, scrape, evaluations), produce the 51st record (clock starts before the produce) and wait
for the firing webhook of each path. Then, after another random sleep, the group commits up to the
watermark (clock restarts) and both resolves are awaited. Every trial is a new incident on both paths.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "integration" / "alerting")]

from watchtower_process import WatchtowerProcess  # noqa: E402

from watchtower.core.units import parse_duration  # noqa: E402
from watchtower.stack.broker import EmbeddedBroker  # noqa: E402
from watchtower.stack.process import _kill_me_with_parent, free_port  # noqa: E402
from watchtower.stack.redis_server import LocalRedis  # noqa: E402

BOUND = 50
TOPIC, GROUP = "bench-vs", "bench-vs-g"
PROFILES = {
    "tuned": {"scrape": "1s", "eval": "1s", "group_wait": "0s", "group_interval": "1s", "period": 1.0},
    "default": {"scrape": "1m", "eval": "1m", "group_wait": "30s", "group_interval": "5m", "period": 60.0},
}


class Receiver:
    """Both webhooks: watchtower POSTs to /watchtower, Alertmanager to /alertmanager; arrival times kept."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str, str]] = []  # (wall time, path, firing|resolved)
        self.evaluated: dict[float, float] = {}  # watchtower arrival -> created_at (the evaluation's now)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                at = time.time()
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path == "/watchtower":
                    kind = {"firing": "firing", "resolved": "resolved"}.get(
                        body.get("kind"), body.get("kind")
                    )
                else:  # Alertmanager: status of the group; a resolve is "resolved"
                    kind = body.get("status", "")
                with receiver.lock:
                    receiver.arrivals.append((at, self.path, kind))
                    if self.path == "/watchtower" and "created_at" in body:
                        receiver.evaluated[at] = float(body["created_at"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def first(self, after: float, path: str, kind: str, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for at, p, k in self.arrivals:
                    if at >= after and p == path and k == kind:
                        return at
            time.sleep(0.005)
        return None


def start_prometheus(work: Path, profile: dict, wt_port: int, am_port: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    (work / "prom-rules.yml").write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "bench",
                        "rules": [
                            {
                                "alert": "BenchLagHigh",
                                "expr": f'max by (group) (watchtower_consumer_lag_messages{{group="{GROUP}"}}) > {BOUND}',
                                "for": "0s",
                            }
                        ],
                    }
                ]
            }
        )
    )
    (work / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": profile["scrape"], "evaluation_interval": profile["eval"]},
                "rule_files": [str(work / "prom-rules.yml")],
                "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
                "scrape_configs": [
                    {"job_name": "watchtower", "static_configs": [{"targets": [f"127.0.0.1:{wt_port}"]}]}
                ],
            }
        )
    )
    proc = subprocess.Popen(
        [
            "/usr/bin/prometheus",
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=open(work / "prometheus.log", "wb"),  # noqa: SIM115 - the child owns it
        stderr=subprocess.STDOUT,
        preexec_fn=_kill_me_with_parent,  # an interrupted bench leaves nothing behind
    )
    return proc, port


def start_alertmanager(work: Path, profile: dict, hook_port: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    (work / "alertmanager.yml").write_text(
        yaml.safe_dump(
            {
                "route": {
                    "receiver": "bench",
                    "group_by": ["group"],
                    "group_wait": profile["group_wait"],
                    "group_interval": profile["group_interval"],
                    "repeat_interval": "4h",
                },
                "receivers": [
                    {
                        "name": "bench",
                        "webhook_configs": [
                            {"url": f"http://127.0.0.1:{hook_port}/alertmanager", "send_resolved": True}
                        ],
                    }
                ],
            }
        )
    )
    proc = subprocess.Popen(
        [
            "/usr/bin/prometheus-alertmanager",
            f"--config.file={work / 'alertmanager.yml'}",
            f"--storage.path={work / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=open(work / "alertmanager.log", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        preexec_fn=_kill_me_with_parent,
    )
    return proc, port


def wait_ready(url: str, proc: subprocess.Popen, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready in {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def prom_lag(prom_url: str) -> float | None:
    try:
        r = httpx.get(
            prom_url + "/api/v1/query",
            params={"query": f'max(watchtower_consumer_lag_messages{{group="{GROUP}"}})'},
            timeout=2,
        ).json()
        result = r["data"]["result"]
        return float(result[0]["value"][1]) if result else None
    except (httpx.HTTPError, KeyError, ValueError, IndexError):
        return None


def wt_lag(wt: WatchtowerProcess) -> float | None:
    for line in wt.metrics().splitlines():
        if line.startswith("watchtower_consumer_lag_messages{") and f'group="{GROUP}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout}s")
        time.sleep(0.05)


def stats(xs: list[float]) -> tuple[float, float, float]:
    if not xs:
        return (float("nan"),) * 3
    p95 = statistics.quantiles(xs, n=20, method="inclusive")[18] if len(xs) > 1 else xs[0]
    return statistics.median(xs), p95, max(xs)


def run_profile(
    name: str, trials: int, work: Path, wt: WatchtowerProcess, receiver: Receiver, bootstrap: str, state: dict
) -> dict[str, list[float]]:
    profile = PROFILES[name]
    scrape, evaluation = parse_duration(profile["scrape"]), parse_duration(profile["eval"])
    d = work / name
    d.mkdir()
    am, am_port = start_alertmanager(d, profile, receiver.port)
    prom, prom_port = start_prometheus(d, profile, wt.port, am_port)
    prom_url = f"http://127.0.0.1:{prom_port}"
    out: dict[str, list[float]] = {k: [] for k in ("wt_fire", "wt_resolve", "pam_fire", "pam_resolve")}
    rng = state["rng"]
    try:
        wait_ready(f"http://127.0.0.1:{am_port}/-/ready", am, "alertmanager")
        wait_ready(prom_url + "/-/ready", prom, "prometheus")
        producer, consumer = state["producer"], state["consumer"]
        for i in range(trials):
            if state["restart"] and i > 0:
                # A new Prometheus per trial: its scrape and evaluation timers start at a new phase
                # against watchtower's lag cycle (within one process that phase is fixed for the run).
                stop(prom)
                prom, prom_port = start_prometheus(d, profile, wt.port, am_port)
                prom_url = f"http://127.0.0.1:{prom_port}"
                wait_ready(prom_url + "/-/ready", prom, "prometheus")
            for _ in range(BOUND):
                producer.produce(TOPIC, b"x", partition=0)
            assert producer.flush(15) == 0
            state["hwm"] += BOUND
            # Both see lag 50 (not a breach), and Prometheus has evaluated it once more.
            until(lambda: wt_lag(wt) == BOUND, 60, "watchtower lag at the bound")
            until(lambda u=prom_url: prom_lag(u) == BOUND, 3 * scrape + 30, "Prometheus lag at the bound")
            time.sleep(evaluation)
            time.sleep(rng.uniform(0, profile["period"]))  # a random phase against every timer
            start = time.time()
            producer.produce(TOPIC, b"x", partition=0)  # lag 51: the breach begins
            assert producer.flush(15) == 0
            state["hwm"] += 1
            budget = 30 if name == "tuned" else 600
            wt_at = receiver.first(start, "/watchtower", "firing", budget)
            pam_at = receiver.first(start, "/alertmanager", "firing", budget)
            time.sleep(rng.uniform(0, profile["period"]))  # the resolve, too, at a random phase
            caught_up = time.time()
            consumer.commit(offsets=[TopicPartition(TOPIC, 0, state["hwm"])], asynchronous=False)
            wt_res = receiver.first(caught_up, "/watchtower", "resolved", budget)
            pam_res = receiver.first(caught_up, "/alertmanager", "resolved", budget)
            row = {
                "wt_fire": wt_at and wt_at - start,
                "pam_fire": pam_at and pam_at - start,
                "wt_resolve": wt_res and wt_res - caught_up,
                "pam_resolve": pam_res and pam_res - caught_up,
            }
            if wt_at is not None and wt_at in receiver.evaluated:
                # Split of watchtower's time: breach -> the evaluation that paged (lag cycle wait + cycle),
                # and that evaluation -> the webhook (rules, commit, dispatcher, HTTP).
                row["wt_breach_to_eval"] = receiver.evaluated[wt_at] - start
                row["wt_eval_to_hook"] = wt_at - receiver.evaluated[wt_at]
            for k, v in row.items():
                if v is not None:
                    out.setdefault(k, []).append(v)
            shown = ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} TIMEOUT" for k, v in row.items())
            print(f"[{name}] trial {i + 1}/{trials}: {shown}  load {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        stop(prom)
        stop(am)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20, help="trials against the tuned (1 s) Prometheus")
    ap.add_argument("--default-trials", type=int, default=0, help="trials against upstream defaults (slow)")
    ap.add_argument("--lag-interval", default="1s", help="watchtower's lag collection interval")
    ap.add_argument("--adaptive", action="store_true", help="lag interval follows its cost (min 250 ms)")
    ap.add_argument("--cost-ratio", type=float, default=0.1, help="with --adaptive")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument(
        "--restart-prometheus",
        action="store_true",
        help="a new Prometheus per trial, so its timers' phase against watchtower's varies too",
    )
    args = ap.parse_args()
    interval = parse_duration(args.lag_interval)
    rng = random.Random(args.seed)

    work = Path(tempfile.mkdtemp(prefix="wt-vs-prom-"))
    load_before = os.getloadavg()
    broker = EmbeddedBroker(log_path=work / "tansu.log", die_with_parent=True).start()
    redis_server = LocalRedis(workdir=work / "redis", die_with_parent=True).start()
    receiver = Receiver()
    bootstrap = broker.bootstrap_servers
    wt = None
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for fut in admin.create_topics([NewTopic(TOPIC, 1, 1)], operation_timeout=10).values():
            fut.result(15)
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False})
        consumer.commit(offsets=[TopicPartition(TOPIC, 0, 0)], asynchronous=False)
        producer = Producer({"bootstrap.servers": bootstrap, "batch.num.messages": 1, "linger.ms": 0})
        (work / "rules.yaml").write_text(
            f"""
routes:
  default: {{group_by: [group], group_wait: 0s, group_interval: 0s}}
rules:
  - name: bench-lag-high
    kind: threshold
    selector: watchtower_consumer_lag_messages{{group="{GROUP}"}}
    aggregate: max
    by: [group]
    bound: {BOUND}
    for: 0s
    severity: page
"""
        )
        lag: dict[str, Any] = {"interval": interval, "timeout": "2s", "groups_allow": [GROUP]}
        if args.adaptive:
            lag["interval_policy"] = {
                "enabled": True,
                "min_interval": "250ms",
                "max_interval": interval,
                "cost_ratio": args.cost_ratio,
            }
        cfg = {
            "kafka": {"bootstrap_servers": bootstrap},
            "redis": {"url": redis_server.url},
            "daemon": {
                "history_size": 2000,
                "collectors": {
                    "kafka_lag": lag,
                    "e2e_latency": {"enabled": False},
                    "spark_progress": {"enabled": False},
                    "dlq": {"enabled": False},
                },
            },
            "alerting": {
                "rules": [str(work / "rules.yaml")],
                "interval": "1s",
                "startup_grace": 0,
                "notifiers": {
                    "hook": {"kind": "webhook", "url": f"http://127.0.0.1:{receiver.port}/watchtower"}
                },
            },
            "log_level": "WARNING",
        }
        wt = WatchtowerProcess(work, cfg).start()
        until(lambda: wt_lag(wt) == 0.0, 60, "watchtower to see the group")
        state = {
            "rng": rng,
            "producer": producer,
            "consumer": consumer,
            "hwm": 0,
            "restart": args.restart_prometheus,
        }
        results = {}
        for name, n in (("tuned", args.trials), ("default", args.default_trials)):
            if n > 0:
                results[name] = run_profile(name, n, work, wt, receiver, bootstrap, state)
        consumer.close()
        status = httpx.get(wt.url + "/api/v1/status").json()["collectors"]["kafka_lag"]
        alerts = httpx.get(wt.url + "/api/v1/alerts").json()["evaluation"]
        load_after = os.getloadavg()
        print(
            f"\nwatchtower lag interval: {'adaptive (min 250 ms, max ' + args.lag_interval + ', cost ratio ' + str(args.cost_ratio) + ')' if args.adaptive else args.lag_interval}"
            f", interval in use at the end {status['interval_seconds']:g} s, last lag cycle "
            f"{status['last_duration_seconds']:.3f} s, lag overruns {status['overruns']}; evaluation cycles "
            f"{alerts['cycles']} ({alerts['reading_cycles']} reading-driven), overruns {alerts['overruns']}"
        )
        print(
            "load average before {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} {:.2f}".format(
                *load_before, *load_after
            )
        )
        print(
            "\n| Prometheus profile | path | trials | breach -> notification p50 / p95 / max s | resolve p50 / p95 / max s |"
        )
        print("|---|---|---:|---|---|")
        for name, r in results.items():
            for path, fire, res in (
                ("watchtower rules -> webhook", r["wt_fire"], r["wt_resolve"]),
                ("Prometheus + Alertmanager -> webhook", r["pam_fire"], r["pam_resolve"]),
            ):
                f, s = stats(fire), stats(res)
                print(
                    f"| {name} | {path} | {len(fire)} | {f[0]:.3f} / {f[1]:.3f} / {f[2]:.3f} "
                    f"| {s[0]:.3f} / {s[1]:.3f} / {s[2]:.3f} |"
                )
            wf, pf = stats(r["wt_fire"]), stats(r["pam_fire"])
            wr, pr = stats(r["wt_resolve"]), stats(r["pam_resolve"])
            print(
                f"| {name} | ratio Prometheus / watchtower | | p50 {pf[0] / wf[0]:.1f}x, p95 {pf[1] / wf[1]:.1f}x "
                f"| p50 {pr[0] / wr[0]:.1f}x |"
            )
            print(
                f"| {name} | watchtower p95 below Prometheus p50? | | {'yes' if wf[1] < pf[0] else 'NO'} "
                f"({wf[1]:.3f} vs {pf[0]:.3f}) | |"
            )
            if r.get("wt_eval_to_hook"):
                a, b = stats(r["wt_breach_to_eval"]), stats(r["wt_eval_to_hook"])
                print(
                    f"| {name} | watchtower split: breach -> paging evaluation / evaluation -> webhook | "
                    f"| {a[0]:.3f} / {a[1]:.3f} / {a[2]:.3f} | {b[0]:.3f} / {b[1]:.3f} / {b[2]:.3f} |"
                )
    finally:
        if wt is not None:
            wt.stop()
        receiver.server.shutdown()
        redis_server.stop()
        broker.stop()


if __name__ == "__main__":
    main()
