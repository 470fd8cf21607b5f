"""`watchtower run` as a real subprocess for end-to-end tests: config file in, HTTP API out, SIGKILL-able."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from watchtower.stack.process import free_port


class WatchtowerProcess:
    def __init__(self, workdir: Path, config: dict[str, Any]) -> None:
        self.workdir = workdir
        self.port = free_port()
        config.setdefault("daemon", {}).setdefault("http", {})["port"] = self.port
        self.config_path = workdir / "watchtower.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> WatchtowerProcess:
        self.runs += 1
        log = open(self.workdir / f"run-{self.runs}.log", "wb")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "watchtower", "--config", str(self.config_path), "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            cwd=self.workdir,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"watchtower run exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"watchtower run did not serve /healthz in {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.workdir.glob("run-*.log")))

    def alerts(self) -> dict[str, Any]:
        return httpx.get(self.url + "/api/v1/alerts", timeout=5).json()

    def metrics(self) -> str:
        return httpx.get(self.url + "/metrics", timeout=5).text

    def kill9(self) -> None:
        """SIGKILL: no stop(), no final flush; whatever was only in memory is gone."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9
        finally:
            self.proc = None
