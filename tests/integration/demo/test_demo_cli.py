"""The README's demo command, end to end: embedded stack, Spark job, workers, generator with faults,
the watchtower daemon with its canary; then drain, stop and a report whose read-back verdict must pass."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def test_demo_runs_by_itself_and_every_event_adds_up(tmp_path):
    report = tmp_path / "report.json"
    env = {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "WATCHTOWER__STACK__STATE_DIR": str(tmp_path / "state"),
        "WATCHTOWER__DAEMON__HTTP__PORT": "0",
        "WATCHTOWER__GENERATOR__DUPLICATE_RATIO": "0.02",
        "WATCHTOWER__GENERATOR__MALFORMED_RATIO": "0.02",
        "WATCHTOWER__GENERATOR__LATE_RATIO": "0.02",
    }
    env.pop("REDIS_URL", None)  # the demo starts its own
    cmd = [
        sys.executable,
        "-m",
        "watchtower",
        "demo",
        "--duration",
        "8",
        "--rate",
        "1500",
        "--workers",
        "1",
        "--report",
        str(report),
    ]
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = orjson.loads(report.read_bytes())
    assert doc["adds_up"] and doc["drained"], doc["readback"]
    # The verdict is read back from the sinks: every delivered record, found by (partition, offset).
    rb = doc["readback"]
    assert rb["ok"] and rb["checked"] == doc["generator"]["delivered"] > 0, rb["summary"]
    assert rb["kinds"]["valid"]["found"] == doc["produced"]["valid"]
    assert rb["read"]["dlq_topic"] == doc["produced"]["malformed"]
    produced = doc["produced"]
    # Every fault kind was injected and reached its own outcome.
    assert produced["malformed"] > 0 and doc["in_dlq"] >= produced["malformed"]
    assert produced["duplicate"] > 0 and doc["deduplicated"] > 0
    assert produced["late"] > 0 and doc["late"] > 0
    assert doc["in_sink"] <= produced["valid"] + produced["late"]
    # The canary ran and was counted as control rows, never as business events.
    assert produced["canary"] > 0 and doc["control"] == produced["marker"] + produced["canary"]
    # Nothing the demo started outlives it.
    state = tmp_path / "state" / "demo" / "stack" / "stack.json"
    assert not state.exists()
