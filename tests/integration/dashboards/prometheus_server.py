"""A real Prometheus (the Debian binary) for tests: its own config and rule file, a free port, the HTTP API."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml
from binaries import require_binary

from watchtower.stack.process import free_port


def wait_for(
    check: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 0.25,
    on_fail: Callable[[], str] | None = None,
) -> Any:
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            extra = ("\n" + on_fail()) if on_fail else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
        pause.wait(interval)


class Prometheus:
    def __init__(self, workdir: Path, targets: list[str], rule_text: str, interval: str = "1s") -> None:
        self.workdir = workdir
        self.port = free_port()
        (workdir / "rules.yml").write_text(rule_text)
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(workdir / "rules.yml")],
            # honor_labels: watchtower's series carry a `job` label of their own (the Spark or Flink job);
            # without it Prometheus renames that to exported_job and every series gets job="watchtower",
            # so the dashboards' `job` variable would list the scrape job instead of the pipeline's jobs.
            "scrape_configs": [
                {
                    "job_name": "watchtower",
                    "honor_labels": True,
                    "static_configs": [{"targets": targets}],
                }
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Prometheus:
        self.proc = subprocess.Popen(
            [
                require_binary("prometheus"),
                f"--config.file={self.workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.workdir / "prometheus.log").open("wb"),
        )
        wait_for(self._ready, 30, "Prometheus to be ready", on_fail=self.log)
        return self

    def _ready(self) -> bool:
        try:
            return httpx.get(self.url + "/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return (self.workdir / "prometheus.log").read_text(errors="replace")[-3000:]

    def query(self, expr: str) -> list[dict[str, Any]]:
        r = httpx.get(self.url + "/api/v1/query", params={"query": expr}, timeout=5).json()
        if r.get("status") != "success":
            raise AssertionError(f"Prometheus rejected {expr!r}: {r}")
        return r["data"]["result"]

    def alerts(self) -> list[dict[str, Any]]:
        return httpx.get(self.url + "/api/v1/alerts", timeout=5).json()["data"]["alerts"]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(15)
            self.proc = None
