"""Small helpers for the local processes the stack starts: free ports, readiness waits, liveness by pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll `condition` until it holds; raise TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def pid_alive(pid: int, expect: str | None = None) -> bool:
    """True if `pid` runs and (when `expect` is given) its executable's name contains `expect`.

    The name check keeps a recycled pid from being taken for ours. Zombies count as dead: a detached
    process whose parent has gone may wait a while for init to reap it.
    """
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own exited child
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: never ours
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no procfs (macOS): trust the signal check
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        argv0 = (proc / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
    except (OSError, IndexError):
        return False
    if state in ("Z", "X"):
        return False
    return expect is None or expect in Path(argv0).name


def stop_pid(pid: int, expect: str | None = None, timeout: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after `timeout`. Returns False if the process was already gone (or not ours)."""
    if not pid_alive(pid, expect):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
        try:
            wait_until(lambda: not pid_alive(pid), timeout, f"pid {pid} to exit")
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not pid_alive(pid), 5.0, f"pid {pid} to die")
    except ProcessLookupError:
        pass  # it exited between the check and the signal
    return True


def _kill_me_with_parent() -> None:
    """In the child before exec (Linux): SIGKILL when the thread that started us exits."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def spawn_watchtower(
    args: list[str],
    log_path: Path,
    env: dict[str, str] | None = None,
    die_with_parent: bool = False,
) -> subprocess.Popen:
    """`python -m watchtower <args>` (this interpreter) in a session of its own, its output appended to
    `log_path`: a terminal's Ctrl-C reaches only the parent, which then stops it in order, and a SIGKILL of
    the session (`os.killpg`) takes its children (a Spark JVM) with it. Secrets go in `env`, never `args`
    (`ps` shows argv). The demo and chaos runs start the Spark job and the chaos daemon with it."""
    out = open(log_path, "ab")  # noqa: SIM115 - the child keeps its copy
    preexec = _kill_me_with_parent if die_with_parent and sys.platform.startswith("linux") else None
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "watchtower", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=preexec,
        )
    finally:
        out.close()


def spawn_listening(
    args: list[str],
    port: int,
    what: str,
    log_path: Path | None = None,
    timeout: float = 30.0,
    die_with_parent: bool = False,
) -> subprocess.Popen:
    """Start a local server detached from the terminal (Ctrl-C must not reach it before we stop it in
    order) and wait until it listens on 127.0.0.1:`port`; raise naming `what` if it exits first.

    `die_with_parent` (Linux): the server is killed when the starting thread's process dies, even by
    SIGKILL, so a test session or benchmark that crashes leaves no server behind. `stack up` does not
    use it: its servers outlive the command on purpose."""
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - the child keeps its copy
    preexec = _kill_me_with_parent if die_with_parent and sys.platform.startswith("linux") else None
    process = subprocess.Popen(
        args,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=preexec,
    )
    if out is not subprocess.DEVNULL:
        out.close()
    wait_until(
        lambda: process.poll() is not None or port_open("127.0.0.1", port), timeout, f"{what} to listen"
    )
    if process.poll() is not None:
        raise RuntimeError(f"{what} exited with code {process.returncode} on port {port}")
    return process


def terminate(process: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`; reaps the child either way."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
