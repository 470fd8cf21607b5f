"""Detection latency on the real stack: from the produce that pushes lag over the bound to the Slack page.

    .venv/bin/python bench/detection_latency.py                 # 10 trials, 1 s lag collection, 1 s evaluation
    .venv/bin/python bench/detection_latency.py --trials 20 --interval 1s

Starts an embedded broker, a local redis-server, the strict fake Slack of tests/slack_fake.py and
`watchtower run` as a subprocess (rule: max lag of the group > 50, `for: 0s`, group_wait 0). Each trial:
50 records (lag 50, at the bound, not breaching), then, after a random pause in [0, interval) so the
breach starts at a random phase against the collection and evaluation timers, one more record; the clock
starts just before that produce and stops when chat.postMessage (kind firing) reaches the fake. Then the group commits up to the
high watermark and the resolve is awaited (also timed) before the next trial, so every trial is a new
incident. Latency includes the produce's acknowledgement, the lag collection cycle, the evaluation cycle,
the Redis commit, the dispatcher's wake-up and one HTTP request.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "integration" / "alerting")]

from slack_fake import TOKEN, FakeSlack, _Handler  # noqa: E402
from watchtower_process import WatchtowerProcess  # noqa: E402

from watchtower.core.units import parse_duration  # noqa: E402
from watchtower.stack.broker import EmbeddedBroker  # noqa: E402
from watchtower.stack.redis_server import LocalRedis  # noqa: E402

BOUND = 50


class TimedSlack(FakeSlack):
    """The fake Slack, noting when each request arrived."""

    arrivals: list[tuple[float, str, str]]  # (wall time, method, notification kind)

    def handle(self, path, headers, raw):  # type: ignore[no-untyped-def]
        at = time.time()
        out = super().handle(path, headers, raw)
        req = self.requests[-1]
        kind = ((req.body.get("metadata") or {}).get("event_payload") or {}).get("kind", "")
        self.arrivals.append((at, req.method, kind))
        return out


def serve(fake: FakeSlack) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Handler,), {"fake": fake}))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def wait_arrival(fake: TimedSlack, after: int, method: str, kind: str, timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for at, m, k in fake.arrivals[after:]:
            if m == method and k == kind:
                return at
        time.sleep(0.005)
    raise TimeoutError(f"no {method} {kind} within {timeout}s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--interval", default="1s", help="lag collection and evaluation interval")
    ap.add_argument(
        "--lag-seconds-method",
        default="auto",
        choices=["auto", "timestamp", "interpolation"],
        help="kafka_lag's lag_seconds_method; auto/timestamp read the record at the committed offset",
    )
    ap.add_argument("--seed", type=int, default=None, help="of the random phase of each breach")
    args = ap.parse_args()
    interval = parse_duration(args.interval)
    rng = random.Random(args.seed)

    work = Path(tempfile.mkdtemp(prefix="wt-detect-"))
    broker = EmbeddedBroker(log_path=work / "tansu.log", die_with_parent=True).start()
    redis_server = LocalRedis(workdir=work / "redis", die_with_parent=True).start()
    fake = TimedSlack()
    fake.arrivals = []
    server = serve(fake)
    bootstrap, topic, group = broker.bootstrap_servers, "bench-detect", "bench-detect-g"
    wt = None
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for fut in admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=10).values():
            fut.result(15)
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
        consumer.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
        producer = Producer({"bootstrap.servers": bootstrap, "batch.num.messages": 1, "linger.ms": 0})
        (work / "rules.yaml").write_text(
            f"""
routes:
  default: {{group_by: [group], group_wait: 0s, group_interval: 0s}}
rules:
  - name: bench-lag-high
    kind: threshold
    selector: watchtower_consumer_lag_messages{{group="{group}"}}
    aggregate: max
    by: [group, topic]
    bound: {BOUND}
    for: 0s
    severity: page
"""
        )
        cfg = {
            "kafka": {"bootstrap_servers": bootstrap},
            "redis": {"url": redis_server.url},
            "daemon": {
                "collectors": {
                    "kafka_lag": {
                        "interval": interval,
                        "timeout": "2s",
                        "groups_allow": [group],
                        "lag_seconds_method": args.lag_seconds_method,
                    },
                    "e2e_latency": {"enabled": False},
                    "spark_progress": {"enabled": False},
                    "dlq": {"enabled": False},
                }
            },
            "alerting": {
                "rules": [str(work / "rules.yaml")],
                "interval": interval,
                "startup_grace": 0,
                "notifiers": {
                    "slack": {"kind": "slack", "token": TOKEN, "channel": "C1", "base_url": fake.api_url}
                },
            },
            "log_level": "WARNING",
        }
        wt = WatchtowerProcess(work, cfg).start()
        time.sleep(3 * interval)  # the group is seen, the first evaluations ran
        hwm, detect, resolve = 0, [], []
        methods: dict[str, int] = {}
        for i in range(args.trials):
            for _ in range(BOUND):
                producer.produce(topic, b"x", partition=0)
            assert producer.flush(15) == 0
            hwm += BOUND
            time.sleep(2.5 * interval)  # lag at the bound is seen and evaluated: not a breach
            # A random phase against the collection and evaluation timers: a fixed pause after the
            # previous step would measure one alignment of the timers, not what a user gets.
            time.sleep(rng.uniform(0, interval))
            seen = len(fake.arrivals)
            start = time.time()
            producer.produce(topic, b"x", partition=0)  # lag BOUND + 1: the breach begins
            assert producer.flush(15) == 0
            hwm += 1
            detect.append(wait_arrival(fake, seen, "chat.postMessage", "firing") - start)
            # Where the lag in seconds of the paging cycle came from (timestamp: the record's own).
            detail = httpx.get(wt.url + "/api/v1/status").json()["snapshot"]["kafka_lag"]["detail"]
            for method, n in detail["lag_seconds_methods"].items():
                methods[method] = methods.get(method, 0) + n
            seen = len(fake.arrivals)
            time.sleep(rng.uniform(0, interval))
            caught_up = time.time()
            consumer.commit(offsets=[TopicPartition(topic, 0, hwm)], asynchronous=False)
            resolve.append(wait_arrival(fake, seen, "chat.postMessage", "resolved") - caught_up)
            print(f"trial {i + 1}: detect {detect[-1]:.3f} s, resolve {resolve[-1]:.3f} s", flush=True)
        consumer.close()
        q = statistics.quantiles
        lag = httpx.get(wt.url + "/api/v1/status").json()["collectors"]["kafka_lag"]
        print(
            f"\ninterval {interval:g} s, lag_seconds_method {args.lag_seconds_method}, {args.trials} trials, "
            f"last lag cycle {lag['last_duration_seconds']:.3f} s, overruns {lag['overruns']}, "
            f"lag seconds at page time from {methods}, "
            f"problems reported by the fake Slack: {len(fake.problems)}"
        )
        print("| | p50 s | p95 s | max s |")
        print("|---|---:|---:|---:|")
        for name, xs in (("breach -> Slack page", detect), ("catch-up commit -> Slack resolve", resolve)):
            print(
                f"| {name} | {statistics.median(xs):.3f} | {q(xs, n=20, method='inclusive')[18]:.3f} | {max(xs):.3f} |"
            )
    finally:
        if wt is not None:
            wt.stop()
        server.shutdown()
        server.server_close()
        redis_server.stop()
        broker.stop()


if __name__ == "__main__":
    main()
