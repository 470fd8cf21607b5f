"""Safety: a chaos run interrupted (SIGTERM) while its broker is paused continues the broker and leaves
the stack healthy. The real CLI, stack, Spark job and daemon; the scenario pauses the run's own tansu."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from watchtower.settings import WatchtowerConfig
from watchtower.stack import Stack
from watchtower.stack.state import load_state

pytestmark = [pytest.mark.integration, pytest.mark.spark]

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = """name: long-broker-pause
purpose: Pause the broker for two minutes (the test interrupts the run meanwhile).
method:
  - {fault: pause_process, at: 0s, duration: 120s, with: {target: broker}}
expect:
  records: unchecked
"""


def proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_sigterm_during_a_broker_pause_continues_the_broker(tmp_path: Path) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "long-broker-pause.yaml").write_text(SCENARIO)
    state = tmp_path / "state"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "WATCHTOWER__STACK__STATE_DIR": str(state)}
    env.pop("REDIS_URL", None)
    cmd = [
        sys.executable,
        "-m",
        "watchtower",
        "chaos",
        "run",
        "long-broker-pause",
        "--scenarios",
        str(scenarios),
        "--keep-stack",
    ]
    log = open(tmp_path / "chaos.log", "wb")  # noqa: SIM115
    run = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    stack_state = state / "chaos" / "stack"
    cfg = WatchtowerConfig().model_copy(
        update={"stack": WatchtowerConfig().stack.model_copy(update={"state_dir": stack_state})}
    )
    try:
        deadline, pid = time.monotonic() + 400, None
        while time.monotonic() < deadline:
            assert run.poll() is None, (tmp_path / "chaos.log").read_text()[-3000:]
            info = load_state(stack_state)
            pid = info.broker.pid if info else None
            if pid and proc_state(pid) == "T":
                break
            time.sleep(0.5)
        else:
            raise AssertionError(
                "the broker was never paused: " + (tmp_path / "chaos.log").read_text()[-3000:]
            )

        run.send_signal(signal.SIGTERM)
        assert run.wait(180) == 130, (tmp_path / "chaos.log").read_text()[-3000:]
        assert proc_state(pid) != "T"  # continued, not left hung
        admin = AdminClient({"bootstrap.servers": info.broker.bootstrap_servers})
        topics = admin.list_topics(timeout=15).topics
        assert "orders" in topics
        assert Stack(cfg).status().healthy
        journal_log = (tmp_path / "chaos.log").read_text()
        assert "undoing the faults" in journal_log
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        info = load_state(stack_state)
        if info is not None and info.broker.pid:
            try:
                os.kill(info.broker.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        Stack(cfg).down()
