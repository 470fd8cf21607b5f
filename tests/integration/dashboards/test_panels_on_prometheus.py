"""Every panel of every dashboard returns data from a real Prometheus scraping a real daemon.

The setup: the generator (`watchtower pipeline generate`, with malformed and late events) writes to the
embedded broker; the Spark job's foreachBatch body (BatchWriter, driven by a plain consumer group) writes
Redis, the DLQ topic and Delta; `watchtower run` (a subprocess) measures it with the kafka_lag,
e2e_latency, canary, dlq and chaos collectors, sizes two dry-run scaling targets and evaluates every
committed rule file (alerts/*.yaml, retargeted at the test topic) plus two test rules; a real Prometheus
scrapes it every second with the exported rules loaded.

A second consumer group has committed and stopped, so its lag grows: the forced breach. A third group
moves one partition and leaves the other behind: its scaling target sees a stuck partition, and with a
capacity hint of 1 msg/s per replica it scales out at once (an action). A chaos fault is recorded through
the runner's own FaultLog. While all that lasts, every target of every panel (template variables
substituted as Grafana's "All" does), every annotation query (as Grafana runs it: over a time range) and
every template variable's label_values must return series through Prometheus' HTTP API. Panels whose
metrics only the Spark or Flink job produce are listed in NEEDS_COMPONENT (asserted to be exactly those);
the spark-flink variant has none: there every panel is proven.

The same breach must make both watchtower's rule and the exported Prometheus rule fire, and a rule whose
selector matches nothing raises its no-data alert on the daemon.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from kafka_support import commit_offsets
from micro_batches import FlinkReferenceJob, MicroBatches, SparkRun
from prometheus_server import Prometheus, wait_for
from slack_fake import TOKEN, FakeSlack
from watchtower_process import WatchtowerProcess

from watchtower.chaos.runner import FaultLog
from watchtower.config.models import PipelineConfig
from watchtower.core.dashboard_links import rule_link
from watchtower.dashboards.layout import (
    DATASOURCE_VAR,
    VARIABLES,
    Board,
    catalog_sources,
    dashboards,
    metrics_in,
)
from watchtower.rules.config import RuleSet, load_rules
from watchtower.rules.export_prometheus import prometheus_yaml
from watchtower.stack.process import free_port

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

REPO = Path(__file__).resolve().parents[3]
RATE_INTERVAL = "15s"
GRAFANA = "http://grafana.test:3000"

# Metrics that only the Spark job's progress listener or the Flink collector (a running Flink job) produce.
SPARK_ONLY = {s.name for s in catalog_sources()["spark_progress"]}
FLINK_ONLY = {s.name for s in catalog_sources()["flink"]}
SPARK_REASON = (
    "Spark job (its StreamingQueryListener writes the progress stream): proven by the spark variant"
)
FLINK_REASON = "Flink job (the Flink collector reads a running job's REST API)"
# Written by the real job's progress listener (outcome counts per batch); the micro-batch runner writes none.
OUTCOMES = {s.name for s in catalog_sources()["pipeline_outcomes"]}
OUTCOMES_REASON = "the job's outcome counts in the progress stream (the Spark listener writes them): proven by the spark variant"
OUTCOME_RULES = ("late-share-high", "duplicate-share-high", "watermark-ahead-of-clock", "future-events")
NEEDS_ALWAYS = {
    **dict.fromkeys(OUTCOMES, OUTCOMES_REASON),
    **{f"rule:{r}": OUTCOMES_REASON for r in OUTCOME_RULES},
}
NEEDS_COMPONENT = {
    # job variant -> panel key -> reason
    "batch-body": {
        **NEEDS_ALWAYS,
        **dict.fromkeys(SPARK_ONLY, SPARK_REASON),
        **dict.fromkeys(FLINK_ONLY - SPARK_ONLY, FLINK_REASON),
        "rule:throughput-below-floor": SPARK_REASON,
        "rule:checkpoint-duration-high": SPARK_REASON,
        "rule:checkpoints-failing": FLINK_REASON,
        "rule:checkpoint-duration-rising": SPARK_REASON,
    },
    # The real Spark job (its listener writes the outcome counts) and the Flink reference job: every panel.
    "spark-flink": {},
}
MAX_NEEDS_COMPONENT = {"batch-body": 26 + len(NEEDS_ALWAYS), "spark-flink": 0}


def rules_dir(tmp: Path, topic: str, stopped_group: str) -> Path:
    d = tmp / "alerts"
    d.mkdir()
    committed = sorted((REPO / "alerts").glob("*.yaml"))
    assert {p.name for p in committed} >= {"default.yaml", "scaling.yaml"}
    for path in committed:  # every committed rule file, so each of their panels is proven too
        (d / path.name).write_text(path.read_text().replace('topic="orders"', f'topic="{topic}"'))
    (d / "test.yaml").write_text(
        f"""
grafana:
  url: {GRAFANA}
routes:
  fast: {{group_by: [group], group_wait: 0s, group_interval: 0s, repeat_interval: 1h}}
rules:
  - name: test-lag-high
    kind: threshold
    selector: watchtower_consumer_lag_messages{{topic="{topic}", group="{stopped_group}"}}
    aggregate: max
    by: [group, topic]
    op: ">"
    bound: 50
    for: 2s
    severity: page
    route: fast
  - name: test-never-data
    kind: threshold
    selector: watchtower_consumer_lag_messages{{group="no-such-group-{uuid.uuid4().hex[:6]}"}}
    bound: 1
    stale_after: 5s
    severity: ticket
"""
    )
    return d


def substituted(expr: str) -> str:
    for var in VARIABLES:
        expr = expr.replace(f"${var}", ".*")
    return expr.replace("$__rate_interval", RATE_INTERVAL)


def query_range(prom: Prometheus, expr: str, start: float) -> list[dict]:
    """What Grafana asks for an annotation: the expression over the dashboard's time range."""
    r = httpx.get(
        prom.url + "/api/v1/query_range",
        params={"query": expr, "start": start, "end": time.time(), "step": "1s"},
        timeout=10,
    ).json()
    assert r.get("status") == "success", f"Prometheus rejected {expr!r}: {r}"
    return r["data"]["result"]


def label_values(prom: Prometheus, label: str, metric: str) -> list[str]:
    """What Grafana asks for `label_values(metric, label)`."""
    r = httpx.get(f"{prom.url}/api/v1/label/{label}/values", params={"match[]": metric}, timeout=10).json()
    assert r.get("status") == "success", r
    return r["data"]


def move_one_partition(bootstrap: str, group: str, topic: str, stop: threading.Event) -> None:
    """Commit partition 0 of `group` at its end every second, never partition 1: partition 1 is stuck."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        while not stop.wait(1):
            _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=5)
            if high > 0:
                c.commit(offsets=[TopicPartition(topic, 0, high)], asynchronous=False)
    finally:
        c.close()


@pytest.fixture(
    params=["batch-body", pytest.param("spark-flink", marks=[pytest.mark.spark, pytest.mark.flink])]
)
def job_kind(request) -> str:
    return request.param


@pytest.fixture
def stack(
    tmp_path: Path,
    bootstrap: str,
    redis_url: str,
    fake_slack: FakeSlack,
    topic_factory,
    group_factory,
    job_kind: str,
):
    topic, dlq_topic = topic_factory("dash", partitions=2), topic_factory("dash-dlq")
    pipeline_group, stopped_group = group_factory("dash-job"), group_factory("dash-stopped")
    half_group = group_factory("dash-half")
    progress_stream = f"wt:dash:progress:{topic}"
    commit_offsets(bootstrap, stopped_group, {(topic, 0): 0, (topic, 1): 0})  # it will never move again
    commit_offsets(bootstrap, half_group, {(topic, 0): 0, (topic, 1): 0})  # partition 0 moves, 1 never
    chaos_key = f"wt:dash:chaos:{uuid.uuid4().hex[:8]}"
    rules = rules_dir(tmp_path, topic, stopped_group)
    data_dir = tmp_path / "data"
    flink = None
    if job_kind == "spark-flink":
        flink = FlinkReferenceJob(free_port(), tmp_path / "flink.log", f"wt-dash-{uuid.uuid4().hex[:6]}")
    config = {
        "kafka": {"bootstrap_servers": bootstrap},
        "redis": {"url": redis_url},
        "pipeline": {
            "topic": topic,
            "dlq_topic": dlq_topic,
            "data_dir": str(data_dir),
            "partitions": 2,
            "consumer_group": pipeline_group,
            "progress_stream": progress_stream,
            "trigger_interval": 0.5,
        },
        "daemon": {
            "collectors": {
                "kafka_lag": {
                    "interval": "1s",
                    "timeout": "2s",
                    "groups_allow": [pipeline_group, stopped_group, half_group],
                    "group_topics_refresh": 0,
                },
                "e2e_latency": {"interval": "1s"},
                "canary": {"enabled": True, "interval": "1s", "lost_after": "20s"},
                "dlq": {"interval": "1s", "rate_window": "30s"},
                "spark_progress": {"enabled": job_kind == "spark-flink", "interval": "1s"},
                "pipeline_outcomes": {"interval": "1s"},
                "chaos": {"interval": "1s", "key": chaos_key},
            }
        },
        # Dry-run targets: one on the pipeline's group (the scaling board's gauges have data), one on the
        # half-moving group, which sees partition 1 stuck and, sized at a hinted 1 msg/s per replica,
        # scales out at once: last action, capacity and stuck-partition series and the action annotation.
        "scaling": {
            "targets": {
                "job": {
                    "group": pipeline_group,
                    "topic": topic,
                    "interval": "1s",
                    "min_replicas": 1,
                    "max_replicas": 2,
                },
                "half": {
                    "group": half_group,
                    "topic": topic,
                    "interval": "1s",
                    "min_replicas": 1,
                    "max_replicas": 2,
                    "policy": {"window": "5s", "stuck_after": "3s", "per_replica_rate": 1},
                    # no sink guard may hold the step back on a loaded machine
                    "sink": {
                        "redis_probe": False,
                        "spark_batch_over_trigger": 1000,
                        "flink_backpressure_max": 1,
                    },
                },
            }
        },
        # One daemon with a lease: the health board's HA row has data (it leads within a try).
        "ha": {"enabled": True, "lease": "5s", "redis_prefix": f"wt-dash-ha-{uuid.uuid4().hex[:8]}:"},
        "alerting": {
            "rules": [str(rules)],
            "interval": "1s",
            "redis_prefix": f"wt-dash-{uuid.uuid4().hex[:8]}:",
            "startup_grace": "3s",
            "notifiers": {
                "slack": {
                    "kind": "slack",
                    "token": TOKEN,
                    "channel": "C1",
                    "base_url": fake_slack.api_url,
                    "timeout": "2s",
                    "max_attempts": 1,
                }
            },
        },
    }
    if flink is not None:
        config["flink"] = {
            "rest_url": flink.rest_url,
            "job_name": flink.name,
            "collect_interval": "1s",
            "request_timeout": "5s",
        }
    (tmp_path / "wt").mkdir()
    wt = WatchtowerProcess(tmp_path / "wt", config)
    ruleset = load_rules(rules)
    (tmp_path / "prom").mkdir()
    prom = Prometheus(tmp_path / "prom", [f"127.0.0.1:{wt.port}"], prometheus_yaml(ruleset))
    (tmp_path / "generator.yaml").write_text(f"pipeline: {{topic: {topic}, partitions: 2}}\n")
    generator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "watchtower",
            "-c",
            str(tmp_path / "generator.yaml"),
            "pipeline",
            "generate",
            "--rate",
            "40",
            "--duration",
            "600",
            "--topic",
            topic,
            "--bootstrap",
            bootstrap,
            "--malformed",
            "0.05",
            "--late",
            "0.02",
            "--duplicates",
            "0.02",
            "--users",
            "50",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "generator.log").open("wb"),
    )
    if flink is not None:
        flink.start()
    if job_kind == "spark-flink":
        job = SparkRun(PipelineConfig.model_validate(config["pipeline"]), bootstrap, redis_url).start()
    else:
        job = MicroBatches(bootstrap, redis_url, topic, dlq_topic, pipeline_group, data_dir).start()
    wt.start()
    prom.start()
    stop_mover = threading.Event()
    mover = threading.Thread(
        target=move_one_partition, args=(bootstrap, half_group, topic, stop_mover), daemon=True
    )
    mover.start()
    faults = FaultLog(redis_url, f"dash-{uuid.uuid4().hex[:6]}", "dash-scenario", key=chaos_key)
    try:
        yield wt, prom, ruleset, topic, stopped_group, job, tmp_path / "generator.log", job_kind, faults
    finally:
        faults.close()
        stop_mover.set()
        mover.join(15)
        generator.terminate()
        generator.wait(20)
        job.stop()
        if flink is not None:
            flink.stop()
        prom.stop()
        wt.stop()


def test_every_panel_returns_series_and_the_breach_fires_both_rules(stack, fake_slack: FakeSlack) -> None:
    wt, prom, ruleset, topic, stopped_group, job, generator_log, job_kind, faults = stack
    expected_needs = NEEDS_COMPONENT[job_kind]
    started = time.monotonic()
    range_start = time.time()
    # A chaos fault, recorded as `watchtower chaos run` records it, runs through the whole check.
    faults.start("step", "broker_down", 0)

    def diag() -> str:
        return f"generator: {generator_log.read_text()[-500:]}\njob: {job.batches} batches, error {job.error!r}\nwatchtower:\n{wt.output()[-3000:]}\nprometheus:\n{prom.log()}"

    wait_for(
        lambda: prom.query('up{job="watchtower"} == 1'), 60, "Prometheus to scrape watchtower", on_fail=diag
    )

    # The forced breach: the stopped group's lag passes 50; watchtower and the exported rule both fire.
    def wt_firing(rule: str):
        return [a for a in wt.alerts()["alerts"] if a["rule"] == rule and a["state"] == "firing"]

    [alert] = wait_for(
        lambda: wt_firing("test-lag-high"), 90, "watchtower's test-lag-high to fire", on_fail=diag
    )
    assert alert["labels"] == {"group": stopped_group, "topic": topic} and alert["value"] > 50

    def prom_firing():
        return [
            a for a in prom.alerts() if a["labels"]["alertname"] == "test_lag_high" and a["state"] == "firing"
        ]

    [palert] = wait_for(prom_firing, 60, "Prometheus' exported test_lag_high to fire", on_fail=diag)
    assert palert["labels"]["group"] == stopped_group and palert["labels"]["severity"] == "page"
    assert palert["labels"]["watchtower_rule"] == "test-lag-high"
    assert float(palert["value"]) > 50

    # The page reached Slack with the link to the rule's panel on the SLA board.
    def page():
        return [
            c for c in fake_slack.calls("chat.postMessage") if "test-lag-high" in json.dumps(c.body["blocks"])
        ]

    post = wait_for(page, 30, "the page on Slack", on_fail=diag)[0]
    link = rule_link(GRAFANA, "test-lag-high")
    assert link in json.dumps(post.body["blocks"])
    sla = next(b for b in dashboards(ruleset) if b.uid == "watchtower-sla")
    assert link.endswith(
        f"viewPanel={next(p for p in sla.panels() if p.key == 'rule:test-lag-high').id(sla.uid)}"
    )

    # A rule whose selector matches nothing raises its no-data alert.
    [nodata] = wait_for(lambda: wt_firing("test-never-data:no-data"), 60, "the no-data alert", on_fail=diag)
    assert nodata["severity"] == "ticket" and "matched no series" in nodata["summary"]

    # Every target of every panel, during the breach.
    # The never-data rule's own panel is empty by design; every other rule's panel must draw.
    shown = RuleSet(
        tuple(r for r in ruleset.rules if r.name != "test-never-data"), ruleset.routes, ruleset.files
    )
    boards: list[Board] = dashboards(shown)
    targets = [(b, p, t) for b in boards for p in b.panels() for t in p.targets]
    needs = {p.key: expected_needs[p.key] for b in boards for p in b.panels() if p.key in expected_needs}
    absent = set() if job_kind == "spark-flink" else OUTCOMES | SPARK_ONLY | FLINK_ONLY
    only_absent = {
        p.key
        for b in boards
        for p in b.panels()
        if all(m in absent for t in p.targets for m in metrics_in(t.expr))
    }
    assert set(needs) == only_absent == set(expected_needs), (
        "NEEDS_COMPONENT lists exactly the panels on metrics of a missing component"
    )
    assert len(needs) <= MAX_NEEDS_COMPONENT[job_kind]

    pending: list = [(b, p, t) for b, p, t in targets if p.key not in needs]
    # Annotations run as Grafana runs them: over the time range (an action's increase() is over in 1m).
    annotations = {(b.uid, a.name): a for b in boards for a in b.annotations}
    assert {n for _, n in annotations} == {"Chaos fault active", "Scaling actions"}
    pending += [("annotation", uid, a) for (uid, _), a in annotations.items()]
    proven = []
    deadline = time.monotonic() + 120
    pause = threading.Event()
    while pending and time.monotonic() < deadline:
        still = []
        for item in pending:
            if item[0] == "annotation":
                found = query_range(prom, substituted(item[2].expr), range_start)
            else:
                found = prom.query(substituted(item[2].expr))
            (proven if found else still).append(item)
        pending = still
        if pending:
            pause.wait(
                1
            )  # series that need a rate window or a recording rule evaluation appear within seconds
    missing = [
        f"annotation {p} {t.name}" if b == "annotation" else f"{b.uid} / {p.title}: {substituted(t.expr)}"
        for b, p, t in pending
    ]
    assert not missing, "panels without data:\n" + "\n".join(missing) + "\n" + diag()
    assert job.error is None, job.error

    # The annotations' series carry what their titleFormat and tags name.
    [chaos] = query_range(prom, "watchtower_chaos_fault_active > 0", range_start)
    assert (chaos["metric"]["scenario"], chaos["metric"]["fault"]) == ("dash-scenario", "broker_down")
    # The scaling action's annotation: its value is the action's time (ms), within the test's span.
    [action] = query_range(
        prom, substituted(annotations[("watchtower-scaling", "Scaling actions")].expr), range_start
    )
    assert action["metric"]["target"] == "half"
    assert range_start - 60 <= float(action["values"][-1][1]) / 1000 <= time.time()
    [stuck] = prom.query('watchtower_scaling_partition_stuck{target="half"}')
    assert stuck["metric"]["partition"] == "1"
    # Once the fault is over, the annotation query finds nothing new: the series reads 0.
    faults.end("step")
    wait_for(
        lambda: prom.query('watchtower_chaos_fault_active{scenario="dash-scenario"} == 0'),
        30,
        "the ended fault to read 0",
        on_fail=diag,
    )

    # Every template variable's label_values(metric, label) has values.
    variables = {v for b in boards for v in b.variables if v != DATASOURCE_VAR}
    assert variables == {"group", "topic", "job", "target"}
    # `job` lists the jobs of watchtower_checkpoint_duration_seconds, which only Spark and Flink report.
    no_job = set() if job_kind == "spark-flink" else {"job"}
    empty = {v for v in variables if not label_values(prom, v, VARIABLES[v].metric)}
    assert empty == no_job, f"template variables without values: {sorted(empty)}"
    assert {"job", "half"} <= set(label_values(prom, "target", VARIABLES["target"].metric))
    if job_kind == "spark-flink":
        # the jobs' own names (Spark's query, the Flink job), not the scrape job's (see honor_labels)
        jobs = set(label_values(prom, "job", VARIABLES["job"].metric))
        assert jobs and "watchtower" not in jobs, jobs
    panels = {(b.uid, p.key) for b, p, t in targets if p.key not in needs}
    print(
        f"\n[{job_kind}] proven: {len(proven) - len(annotations)} targets of {len(panels)} panels, "
        f"{len(annotations)} annotations and {len(variables)} variables on {len(boards)} boards; "
        f"needs_component: {len(needs)} panels; {time.monotonic() - started:.0f}s"
    )
