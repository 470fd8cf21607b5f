"""The Flink collector against the real reference job on a local mini-cluster.

One job per module (starting one costs ~20 s of JVM and Python workers): the read-only checks run first,
the fault test that kills and restarts it runs last.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from watchtower.collectors.flink import FlinkCollector, FlinkUnavailable
from watchtower.config.flink import FlinkConfig
from watchtower.core.types import Reading, labels
from watchtower.stack.process import free_port, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.flink]

JOB = "watchtower-flink-it"
REPO = Path(__file__).resolve().parents[3]
STARTUP = 180.0  # a cold JVM plus Python workers on two busy cores


class FlinkJob:
    """`python -m pipelines.flink.job` in its own process group, so its JVM and Python workers go with it."""

    def __init__(
        self, port: int, log: Path, name: str = JOB, args: tuple[str, ...] = ("--late-ratio", "0.05")
    ):
        self.port, self.log, self.name, self.args = port, log, name, args
        self.proc: subprocess.Popen | None = None

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FlinkJob:
        cmd = [
            sys.executable,
            "-m",
            "pipelines.flink.job",
            "--rest-port",
            str(self.port),
            "--job-name",
            self.name,
        ]
        cmd += ["--checkpoint-interval", "1", "--rate", "50", *self.args]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_until(
            self._running, STARTUP, f"Flink job {self.name} RUNNING at {self.rest_url} (log: {self.log})", 0.5
        )
        return self

    def _running(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"the Flink job exited with {self.proc.returncode}; see {self.log}")
        try:
            jobs = httpx.get(f"{self.rest_url}/jobs/overview", timeout=1).json()["jobs"]
        except (httpx.HTTPError, ValueError, KeyError):
            return False
        return any(j["name"] == self.name and j["state"] == "RUNNING" for j in jobs)

    def kill_launcher(self) -> None:
        """SIGKILL only the Python launcher: its JVM sees stdin close and has to go down by itself."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def group_alive(self) -> bool:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, 0)
            return True
        except ProcessLookupError:
            return False


@pytest.fixture(scope="module")
def flink_job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlinkJob]:
    job = FlinkJob(free_port(), tmp_path_factory.mktemp("flink") / "job.log")
    try:
        yield job.start()
    finally:
        job.stop()


@pytest.fixture(scope="module")
def collector(flink_job: FlinkJob) -> Iterator[FlinkCollector]:
    c = FlinkCollector(FlinkConfig(rest_url=flink_job.rest_url, job_name=JOB, request_timeout=5))
    yield c
    c.close()


JL = labels(engine="flink", job=JOB)


def collect_until(collector: FlinkCollector, condition, what: str, timeout: float = 90.0) -> Reading:
    """Collect until `condition(reading)` holds; the last reading."""
    last: list[Reading] = []

    def check() -> bool:
        last[:] = [collector.collect(time.time())]
        return condition(last[0])

    wait_until(check, timeout, what, interval=0.5)
    return last[0]


def test_checkpoint_duration_is_what_flink_reports(flink_job: FlinkJob, collector: FlinkCollector) -> None:
    r = collect_until(
        collector,
        lambda r: r.values("watchtower_checkpoints_completed_total").get(JL, 0) >= 3,
        "3 checkpoints",
    )
    cp = r.detail["jobs"][JOB]["checkpoints"]
    jid = r.detail["jobs"][JOB]["jid"]
    # Flink's own account of that very checkpoint (a newer one may have completed since the collection).
    flink = httpx.get(
        f"{flink_job.rest_url}/jobs/{jid}/checkpoints/details/{cp['latest_id']}", timeout=5
    ).json()
    assert flink["status"] == "COMPLETED"
    assert r.values("watchtower_checkpoint_duration_seconds")[JL] == flink["end_to_end_duration"] / 1000
    assert r.values("watchtower_checkpoint_size_bytes")[JL] == flink["state_size"]
    assert 0 <= r.values("watchtower_checkpoint_age_seconds")[JL] < 30
    # and the collector's latest is Flink's latest, or an older one
    latest = httpx.get(f"{flink_job.rest_url}/jobs/{jid}/checkpoints", timeout=5).json()["latest"][
        "completed"
    ]
    assert latest["id"] >= cp["latest_id"]


def test_records_flow_without_restarts(collector: FlinkCollector) -> None:
    def flowing(r: Reading) -> bool:
        # Flink refreshes these per-second rates about every 10 s, the in and out rates not together.
        ins = r.values("watchtower_records_in_per_second").values()
        outs = r.values("watchtower_records_out_per_second").values()
        return any(v > 0 for v in ins) and any(v > 0 for v in outs)

    r = collect_until(collector, flowing, "records in and out per second above 0")
    assert r.values("watchtower_job_up") == {JL: 1.0}
    assert r.values("watchtower_job_status")[labels(engine="flink", job=JOB, status="running")] == 1.0
    assert r.values("watchtower_job_restarts_total") == {JL: 0.0}
    vertices = {dict(lbl)["vertex"] for lbl in r.values("watchtower_backpressure_ratio")}
    assert any(v.startswith("Source: ticks") for v in vertices) and any(
        v.startswith("user-windows") for v in vertices
    )
    assert all(0.0 <= v <= 1.0 for v in r.values("watchtower_backpressure_ratio").values())
    assert max(r.values("watchtower_records_out_per_second").values()) > 0


def test_late_events_reach_the_side_output(flink_job: FlinkJob, collector: FlinkCollector) -> None:
    jid = collector.collect(time.time()).detail["jobs"][JOB]["jid"]
    window = next(
        v
        for v in httpx.get(f"{flink_job.rest_url}/jobs/{jid}", timeout=5).json()["vertices"]
        if v["name"].startswith("user-windows")
    )
    url = f"{flink_job.rest_url}/jobs/{jid}/vertices/{window['id']}/subtasks/metrics?get=Map__late-events.lateEvents"

    def late_counted() -> bool:
        body = httpx.get(url, timeout=5).json()
        return bool(body) and body[0].get("sum", 0) > 0

    wait_until(late_counted, 90, "late events counted by the side output", 1.0)
    # and watchtower exports the count, as the Spark job's late outcome
    late = labels(engine="flink", job=JOB, outcome="late")
    collect_until(
        collector,
        lambda r: r.values("watchtower_pipeline_records_total").get(late, 0) > 0,
        "the late count in the collector's reading",
        timeout=60,
    )


def test_killed_flink_is_reported_down_then_recovers(flink_job: FlinkJob, collector: FlinkCollector) -> None:
    old_jid = collector.collect(time.time()).detail["jobs"][JOB]["jid"]
    flink_job.kill_launcher()

    def down() -> bool:
        try:
            collector.collect(time.time())
        except FlinkUnavailable:
            return True
        return False

    wait_until(down, 30, "the collector to report Flink down")
    with pytest.raises(FlinkUnavailable, match=f"127.0.0.1:{flink_job.port}"):
        collector.collect(time.time())
    # the JVM and the Python workers follow the launcher instead of lingering
    wait_until(lambda: not flink_job.group_alive(), 30, "the Flink JVM to exit after its launcher")

    flink_job.start()  # same port: the collector needs no change
    r = collect_until(collector, lambda r: r.values("watchtower_job_up").get(JL) == 1.0, "job up again")
    assert r.detail["jobs"][JOB]["jid"] != old_jid
    # job metrics appear a few seconds after the job does (the JobManager fetches them periodically)
    r = collect_until(
        collector,
        lambda r: (
            JL in r.values("watchtower_job_restarts_total")
            and r.values("watchtower_checkpoints_completed_total").get(JL, 0) >= 1
        ),
        "restarts and a checkpoint after the restart",
    )
    assert r.values("watchtower_job_restarts_total") == {JL: 0.0}
