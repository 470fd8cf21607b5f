"""A throwaway redis-server for the embedded stack and the tests (memory only, no persistence)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from watchtower.stack.process import free_port, port_open, wait_until


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


@dataclass
class LocalRedis:
    port: int = 0
    workdir: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> LocalRedis:
        binary = redis_server_binary()
        if binary is None:
            raise FileNotFoundError("redis-server is not on PATH: install it (apt-get install redis-server) or set REDIS_URL")
        if not self.port:
            self.port = free_port()
        args = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        if self.workdir:
            self.workdir.mkdir(parents=True, exist_ok=True)
            args += ["--dir", str(self.workdir)]
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True
        )
        wait_until(lambda: self.process.poll() is not None or port_open("127.0.0.1", self.port), timeout, "redis-server to listen")
        if self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited with code {self.process.returncode} on port {self.port}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
