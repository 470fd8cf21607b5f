"""The Flink actuator against the reference job on a local mini-cluster with the adaptive scheduler and
spare slots: an in-place rescale, seen in Flink's own REST API (every vertex's parallelism)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from watchtower.scale.actuators.flink import RESCALE, Config, build
from watchtower.scale.base import ApplyResult
from watchtower.stack.process import free_port, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.flink]

JOB = "watchtower-flink-rescale-it"
REPO = Path(__file__).resolve().parents[3]
STARTUP = 180.0


class AdaptiveJob:
    def __init__(self, port: int, log: Path) -> None:
        self.port, self.log = port, log
        self.proc: subprocess.Popen | None = None

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AdaptiveJob:
        cmd = [sys.executable, "-m", "pipelines.flink.job", "--rest-port", str(self.port), "--job-name", JOB]
        cmd += ["--scheduler", "adaptive", "--slots", "4", "--parallelism", "1", "--rate", "50"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_until(
            lambda: self.vertex_parallelism() is not None, STARTUP, f"{JOB} RUNNING (log: {self.log})", 0.5
        )
        return self

    def vertex_parallelism(self) -> dict[str, int] | None:
        """Flink's own view: each RUNNING vertex's parallelism, or None before the job runs."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"the Flink job exited with {self.proc.returncode}; see {self.log}")
        try:
            jobs = httpx.get(f"{self.rest_url}/jobs/overview", timeout=2).json()["jobs"]
            [jid] = [j["jid"] for j in jobs if j["name"] == JOB and j["state"] == "RUNNING"]
            vertices = httpx.get(f"{self.rest_url}/jobs/{jid}", timeout=2).json()["vertices"]
        except (httpx.HTTPError, ValueError, KeyError):
            return None
        if any(v["status"] != "RUNNING" for v in vertices):
            return None
        return {v["name"]: v["parallelism"] for v in vertices}

    def stop(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdaptiveJob]:
    j = AdaptiveJob(free_port(), tmp_path_factory.mktemp("flink-rescale") / "job.log")
    try:
        yield j.start()
    finally:
        j.stop()


def test_rescale_in_place_is_seen_in_flinks_rest_api(job: AdaptiveJob) -> None:
    actuator = build("flink-reference", Config(kind="flink", rest_url=job.rest_url, job_name=JOB, timeout=10))
    try:
        assert actuator.current() == 1
        before = job.vertex_parallelism()
        assert before and set(before.values()) == {1}

        result = actuator.apply(2)
        assert result == ApplyResult("flink-reference", 2, 2, how=RESCALE)
        wait_until(
            lambda: (p := job.vertex_parallelism()) and set(p.values()) == {2},
            120,
            "every vertex at parallelism 2",
            0.5,
        )
        assert actuator.current() == 2

        assert actuator.apply(1).how == RESCALE  # and back down
        wait_until(
            lambda: (p := job.vertex_parallelism()) and set(p.values()) == {1},
            120,
            "every vertex back at 1",
            0.5,
        )
        assert actuator.current() == 1
    finally:
        actuator.close()


def test_default_scheduler_refuses_so_stop_with_savepoint_and_restart(tmp_path: Path) -> None:
    """Without the adaptive scheduler Flink refuses the in-place rescale; the actuator stops the job with a
    savepoint and runs the restart command, which submits it again from that savepoint at the new parallelism."""
    port = free_port()
    job = AdaptiveJob(port, tmp_path / "job.log")
    cmd = [
        sys.executable,
        "-m",
        "pipelines.flink.job",
        "--rest-port",
        str(port),
        "--job-name",
        JOB,
        "--rate",
        "50",
    ]
    with (tmp_path / "job.log").open("ab") as out:
        job.proc = subprocess.Popen(
            cmd + ["--parallelism", "1"],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    restart = cmd + ["--slots", "2", "--from-savepoint", "{savepoint}", "--parallelism", "{parallelism}"]
    actuator = build(
        "flink-reference",
        Config(
            kind="flink",
            rest_url=job.rest_url,
            job_name=JOB,
            timeout=10,
            savepoint_dir=(tmp_path / "savepoints").as_uri(),
            restart_command=restart,
            savepoint_timeout=120,
        ),
    )
    try:
        wait_until(lambda: job.vertex_parallelism() is not None, STARTUP, f"{JOB} RUNNING", 0.5)
        old_jid = actuator.job_id()
        result = actuator.apply(2)
        assert result.ok and result.how == "savepoint-restart", result
        assert actuator.restarted is not None
        job.proc.wait(60)  # the first launcher returns once its job stopped with the savepoint
        job.proc = actuator.restarted  # the restarted launcher owns the job now
        wait_until(
            lambda: (p := job.vertex_parallelism()) and set(p.values()) == {2},
            STARTUP,
            "the job back at 2",
            0.5,
        )
        new_jid = actuator.job_id()
        assert new_jid != old_jid
        restored = httpx.get(f"{job.rest_url}/jobs/{new_jid}/checkpoints", timeout=5).json()["latest"][
            "restored"
        ]
        assert restored["is_savepoint"] and restored["external_path"].startswith(
            (tmp_path / "savepoints").as_uri().replace("file://", "file:")
        )
        assert list((tmp_path / "savepoints").iterdir())  # the savepoint is on disk
    finally:
        actuator.close()
        job.stop()
