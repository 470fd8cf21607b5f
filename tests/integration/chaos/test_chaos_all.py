"""`watchtower chaos run --all` on the embedded stack, as CI runs it: every shipped scenario passes with the
real Spark job, workers, daemon (paging through its Slack notifier) and a local Slack endpoint; and a
scenario whose expected rule is silenced fails its detection verdict (the verdict can fail)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import orjson
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.spark]

ROOT = Path(__file__).resolve().parents[3]


def chaos(tmp_path: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "WATCHTOWER__STACK__STATE_DIR": str(tmp_path / "state"),
    }
    env.pop("REDIS_URL", None)
    cmd = [sys.executable, "-m", "watchtower", "chaos", "run", *args]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def journals(report: Path) -> dict[str, dict]:
    return {(d := orjson.loads(p.read_bytes()))["scenario"]: d for p in report.glob("*.json")}


@pytest.mark.timeout(1800)
def test_every_shipped_scenario_passes(tmp_path: Path) -> None:
    report = tmp_path / "report"
    done = chaos(tmp_path, "--all", "--report", str(report), timeout=1700)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-6000:]
    shipped = {p.stem for p in (ROOT / "chaos" / "scenarios").glob("*.yaml")}
    suite = ET.parse(report / "junit.xml").getroot()
    assert (int(suite.get("tests")), int(suite.get("failures"))) == (len(shipped), 0)
    runs = journals(report)
    assert set(runs) == shipped
    for name, doc in runs.items():
        assert doc["ok"] and doc["conservation"]["ok"] and doc["detection"]["ok"], (name, doc["failures"])
        assert (report / f"{name}-{doc['run_id']}.png").stat().st_size > 0
    skew = runs["clock-skew-year"]["conservation"]["kinds"]
    assert skew["future"]["found"] == 1 and skew["on_time_after_skew"]["found"] == 200  # none of them late


def test_a_silenced_rule_fails_the_detection_verdict(tmp_path: Path) -> None:
    report = tmp_path / "report"
    done = chaos(
        tmp_path,
        "late-beyond-watermark",
        "--silence",
        "late-share-high",
        "--report",
        str(report),
        timeout=900,
    )
    assert done.returncode == 1, done.stdout[-4000:] + done.stderr[-4000:]
    doc = journals(report)["late-beyond-watermark"]
    assert doc["conservation"]["ok"]  # the records are fine: only detection fails
    alert = doc["detection"]["alerts"][0]
    assert (alert["rule"], alert["fired_after"], alert["ok"]) == ("late-share-high", None, False)
    assert "late-share-high: never paged" in doc["detection"]["summary"]
