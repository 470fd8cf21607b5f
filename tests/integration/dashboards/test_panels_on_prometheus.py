"""Every panel of every dashboard returns data from a real Prometheus scraping a real daemon.

The setup: the generator (`watchtower pipeline generate`, with malformed and late events) writes to the
embedded broker; the Spark job's foreachBatch body (BatchWriter, driven by a plain consumer group) writes
Redis, the DLQ topic and Delta; `watchtower run` (a subprocess) measures it with the kafka_lag,
e2e_latency, canary and dlq collectors and evaluates the shipped rules (retargeted at the test topic) plus
two test rules; a real Prometheus scrapes it every second with the exported rules loaded.

A second consumer group has committed and stopped, so its lag grows: the forced breach. While it lasts,
every target of every panel (template variables substituted as Grafana's "All" does) must return series
through Prometheus' HTTP API. Panels whose metrics only the Spark or Flink job produce are listed in
NEEDS_COMPONENT (asserted to be exactly those), everything else must have data.

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

import pytest
from kafka_support import commit_offsets
from micro_batches import FlinkReferenceJob, MicroBatches, SparkRun
from prometheus_server import Prometheus, wait_for
from slack_fake import TOKEN, FakeSlack
from watchtower_process import WatchtowerProcess

from watchtower.config.models import PipelineConfig
from watchtower.core.dashboard_links import rule_link
from watchtower.dashboards.layout import Board, catalog_sources, dashboards, metrics_in
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
# Scaling series that exist only after an action or during a stuck partition (the test's target is dry-run).
SCALING_EVENTS = {
    "watchtower_scaling_last_action_replicas",
    "watchtower_scaling_last_action_timestamp_seconds",
    "watchtower_scaling_partition_stuck",
    "watchtower_scaling_capacity_per_replica",
}
SCALING_REASON = (
    "only after a scaling action or a stuck partition (tests/integration/scale covers them on real workers)"
)
OUTCOME_RULES = ("late-share-high", "duplicate-share-high", "watermark-ahead-of-clock", "future-events")
NEEDS_ALWAYS = {
    **dict.fromkeys(SCALING_EVENTS, SCALING_REASON),
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
    # The real Spark job (its listener writes the outcome counts) and the Flink reference job: every panel
    # draws but the scaling ones that need an action or a stuck partition.
    "spark-flink": dict.fromkeys(SCALING_EVENTS, SCALING_REASON),
}
MAX_NEEDS_COMPONENT = {"batch-body": 26 + len(NEEDS_ALWAYS), "spark-flink": len(SCALING_EVENTS)}


def rules_dir(tmp: Path, topic: str, stopped_group: str) -> Path:
    d = tmp / "alerts"
    d.mkdir()
    shipped = (REPO / "alerts" / "default.yaml").read_text().replace('topic="orders"', f'topic="{topic}"')
    (d / "default.yaml").write_text(shipped)
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
    for var in ("group", "topic", "job"):
        expr = expr.replace(f"${var}", ".*")
    return expr.replace("$__rate_interval", RATE_INTERVAL)


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
    progress_stream = f"wt:dash:progress:{topic}"
    commit_offsets(bootstrap, stopped_group, {(topic, 0): 0, (topic, 1): 0})  # it will never move again
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
                    "groups_allow": [pipeline_group, stopped_group],
                    "group_topics_refresh": 0,
                },
                "e2e_latency": {"interval": "1s"},
                "canary": {"enabled": True, "interval": "1s", "lost_after": "20s"},
                "dlq": {"interval": "1s", "rate_window": "30s"},
                "spark_progress": {"enabled": job_kind == "spark-flink", "interval": "1s"},
                "pipeline_outcomes": {"interval": "1s"},
            }
        },
        # A dry-run target on the pipeline's group: the scaling board's gauges have data.
        "scaling": {
            "targets": {
                "job": {
                    "group": pipeline_group,
                    "topic": topic,
                    "interval": "1s",
                    "min_replicas": 1,
                    "max_replicas": 2,
                }
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
    try:
        yield wt, prom, ruleset, topic, stopped_group, job, tmp_path / "generator.log", job_kind
    finally:
        generator.terminate()
        generator.wait(20)
        job.stop()
        if flink is not None:
            flink.stop()
        prom.stop()
        wt.stop()


def test_every_panel_returns_series_and_the_breach_fires_both_rules(stack, fake_slack: FakeSlack) -> None:
    wt, prom, ruleset, topic, stopped_group, job, generator_log, job_kind = stack
    expected_needs = NEEDS_COMPONENT[job_kind]
    started = time.monotonic()

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
    absent = SCALING_EVENTS | (set() if job_kind == "spark-flink" else OUTCOMES | SPARK_ONLY | FLINK_ONLY)
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

    pending = [(b, p, t) for b, p, t in targets if p.key not in needs]
    proven = []
    deadline = time.monotonic() + 120
    pause = threading.Event()
    while pending and time.monotonic() < deadline:
        still = []
        for item in pending:
            (proven if prom.query(substituted(item[2].expr)) else still).append(item)
        pending = still
        if pending:
            pause.wait(
                1
            )  # series that need a rate window or a recording rule evaluation appear within seconds
    missing = [f"{b.uid} / {p.title}: {substituted(t.expr)}" for b, p, t in pending]
    assert not missing, "panels without data:\n" + "\n".join(missing) + "\n" + diag()
    assert job.error is None, job.error
    print(
        f"\n[{job_kind}] proven: {len(proven)} targets of {len({(b.uid, p.key) for b, p, t in targets if p.key not in needs})} panels "
        f"on {len(boards)} boards; needs_component: {len(needs)} panels; {time.monotonic() - started:.0f}s"
    )
