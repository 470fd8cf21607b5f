"""A core install (`pip install .`, no extras) in a fresh virtualenv runs the daemon against the embedded
broker and a real Redis: the lag collector reports, the packaged rules are evaluated, and the DLQ
collector skips the Delta table it would need the `spark` extra for instead of failing.

Fast on purpose (it runs on every CI): the venv is made without upgrading pip, the install reuses pip's
cache and the machine's index configuration (the environment and pip.conf are inherited), and the
source is copied first so the build never writes into the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from kafka_support import commit_offsets, produce_exact, unique
from prometheus_client.parser import text_string_to_metric_families

from watchtower.rules.config import check_rules
from watchtower.stack.process import free_port

pytestmark = [pytest.mark.integration, pytest.mark.install]

REPO = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "*.egg-info",
    "__pycache__",
    ".watchtower",
    ".pytest_cache",
    ".ruff_cache",
    "tests",
    "bench",
)


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("core-install")
    src = root / "src"
    shutil.copytree(REPO, src, ignore=SKIP)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(src)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return venv


def _py(venv: Path, code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_the_core_install_has_no_spark_or_flink(core_venv: Path, tmp_path: Path) -> None:
    probe = _py(
        core_venv,
        "import importlib.util as u; print([m for m in ('pyspark', 'pyarrow', 'pyflink') if u.find_spec(m)])",
        tmp_path,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "[]"
    # ... and watchtower is the installed copy, not this checkout.
    where = _py(
        core_venv, "import watchtower, alerts; print(watchtower.__file__); print(alerts.__file__)", tmp_path
    )
    assert where.returncode == 0, where.stderr
    assert all(str(core_venv) in line for line in where.stdout.splitlines()), where.stdout


def test_what_needs_an_extra_says_which(core_venv: Path, tmp_path: Path, bootstrap: str) -> None:
    watchtower = str(core_venv / "bin" / "watchtower")
    spark = subprocess.run(
        [watchtower, "pipeline", "spark"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert spark.returncode == 2
    assert (
        "the Spark job needs pyspark, pyarrow, which the 'spark' extra installs: pip install 'watchtower[spark]'"
        in " ".join(spark.stderr.split())
    )
    assert "Traceback" not in spark.stderr
    # A DLQ table named in the config cannot be counted without pyarrow: a clear start-up error.
    env = {
        **os.environ,
        "WATCHTOWER__ALERTING__ENABLED": "false",
        "WATCHTOWER__DAEMON__COLLECTORS__DLQ__TABLE": str(tmp_path / "dlq"),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
    }
    run = subprocess.run(
        [watchtower, "run"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 2, run.stderr
    assert "counting the DLQ Delta table (daemon.collectors.dlq.table) needs pyarrow" in " ".join(
        run.stderr.split()
    )
    assert "Traceback" not in run.stderr


def test_core_install_runs_the_daemon(
    core_venv: Path, tmp_path: Path, bootstrap: str, redis_url: str, topic_factory, group_factory
) -> None:
    watchtower = core_venv / "bin" / "watchtower"
    help_ = subprocess.run([str(watchtower), "run", "--help"], capture_output=True, text=True, timeout=60)
    assert help_.returncode == 0 and "Run the collectors" in help_.stdout, help_.stderr

    topic, group = topic_factory("core", partitions=2), group_factory("core")
    produce_exact(bootstrap, topic, {0: 5, 1: 3})
    commit_offsets(bootstrap, group, {(topic, 0): 2, (topic, 1): 3})

    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("WATCHTOWER", "VIRTUAL_ENV", "PYTHONPATH"))
    }
    env |= {
        "PYTHONUNBUFFERED": "1",
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "REDIS_URL": redis_url,
        "WATCHTOWER__DAEMON__HTTP__PORT": str(port),
        "WATCHTOWER__DAEMON__COLLECTORS__KAFKA_LAG__INTERVAL": "1s",
        "WATCHTOWER__DAEMON__COLLECTORS__KAFKA_LAG__GROUPS_ALLOW": f'["{group}"]',
        "WATCHTOWER__DAEMON__COLLECTORS__DLQ__INTERVAL": "1s",
        "WATCHTOWER__DAEMON__COLLECTORS__DLQ__TOPIC": "",  # no DLQ topic here: only the (default) table part
        "WATCHTOWER__ALERTING__REDIS_PREFIX": unique("wt-core:") + ":",
    }
    workdir = tmp_path / "empty"
    workdir.mkdir()
    log_path = tmp_path / "run.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(watchtower), "run"], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"

    def lag() -> dict[str, float]:
        try:
            text = httpx.get(url + "/metrics", timeout=2).text
        except httpx.HTTPError:
            return {}
        return {
            s.labels["partition"]: s.value
            for f in text_string_to_metric_families(text)
            if f.name == "watchtower_consumer_lag_messages"
            for s in f.samples
            if s.labels.get("group") == group and s.labels.get("topic") == topic
        }

    try:
        deadline = time.monotonic() + 60
        seen: dict[str, float] = {}
        while time.monotonic() < deadline and seen != {"0": 3.0, "1": 0.0}:
            assert proc.poll() is None, (
                f"watchtower run exited with {proc.returncode}:\n{log_path.read_text()}"
            )
            seen = lag()
            threading.Event().wait(0.25)
        assert seen == {"0": 3.0, "1": 0.0}, log_path.read_text()

        status = httpx.get(url + "/api/v1/status", timeout=5).json()
        assert status["collectors"]["dlq"]["last_error"] is None, status["collectors"]["dlq"]
        table = status["snapshot"]["dlq"]["detail"]["table"]
        assert "pip install 'watchtower[spark]'" in table["skipped"]
        evaluation = httpx.get(url + "/api/v1/alerts", timeout=5).json()["evaluation"]
        packaged, _ = check_rules(
            Path(__file__).resolve().parents[2] / "alerts"
        )  # the same files, from the source tree
        assert evaluation["rules"] == len(packaged.rules) > 0
        assert all(f.startswith(str(core_venv)) for f in evaluation["rule_files"])
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode == 0, log_path.read_text()


def test_the_shipped_chaos_scenarios_are_found_from_any_directory(core_venv: Path, tmp_path: Path) -> None:
    """`watchtower chaos check` in an empty directory checks the scenarios packaged with the install."""
    check = subprocess.run(
        [str(core_venv / "bin" / "watchtower"), "chaos", "check"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    shipped = sorted(p.stem for p in (Path(__file__).parents[2] / "chaos" / "scenarios").glob("*.yaml"))
    assert f"scenarios OK: {len(shipped)} ({', '.join(shipped)})" in " ".join(check.stdout.split())
