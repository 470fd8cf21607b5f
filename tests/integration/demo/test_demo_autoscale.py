"""`watchtower demo --autoscale`: the load steps up and back, the daemon scales the real workers, counts add up."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def test_demo_autoscale_follows_the_load_step(tmp_path):
    report = tmp_path / "report.json"
    env = {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "WATCHTOWER__STACK__STATE_DIR": str(tmp_path / "state"),
        "WATCHTOWER__DAEMON__HTTP__PORT": "0",
    }
    env.pop("REDIS_URL", None)
    cmd = [
        sys.executable,
        "-m",
        "watchtower",
        "demo",
        "--autoscale",
        "--duration",
        "150",
        "--rate",
        "200",
        "--report",
        str(report),
    ]
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    doc = orjson.loads(report.read_bytes())
    assert doc["adds_up"] and doc["drained"], doc.get("checks")
    actions = doc["scaling"]["recent_actions"]
    assert any(a["to"] > a["from"] for a in actions), doc["scaling"]  # the workers followed the step up
    # (How many actions it takes is asserted in tests/integration/scale/: here Spark competes for the CPU.)
