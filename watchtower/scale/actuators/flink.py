"""Flink actuator: rescale a running job through the JobManager REST API.

In place first (`how="rescale"`): with the adaptive scheduler (`jobmanager.scheduler: adaptive`) and
spare slots, `PUT /jobs/:jid/resource-requirements` with every vertex's `parallelism.upperBound` set to
the new count makes Flink rescale the running job from its latest state, no restart by us:

    GET /jobs/:jid/resource-requirements -> {"<vertex id>": {"parallelism": {"lowerBound": 1, "upperBound": 2}}}
    PUT /jobs/:jid/resource-requirements    same shape, upperBound = n (lowerBound kept, at most n)

Where Flink refuses that (another scheduler answers the PUT with an error), and only when a savepoint
directory and a restart command are configured, the Flink Kubernetes operator's way (`how="savepoint-restart"`):

    POST /jobs/:jid/stop {"targetDirectory": dir, "drain": false}   -> {"request-id": trigger}
    GET  /jobs/:jid/savepoints/:trigger                             -> {"status": {"id": "COMPLETED"},
                                                                        "operation": {"location": path}}
    run restart_command with {savepoint} and {parallelism} filled in (it submits the job again)

The replica count of a job is the highest parallelism among its vertices (`GET /jobs/:jid`).
"""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from watchtower.core.units import Duration
from watchtower.scale.base import ActuatorError, ApplyResult

log = logging.getLogger(__name__)

RESCALE, SAVEPOINT_RESTART = "rescale", "savepoint-restart"


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["flink"] = "flink"
    rest_url: str = "http://127.0.0.1:8081"
    job_name: str = Field(min_length=1)  # the newest RUNNING job of this name is the target
    timeout: Duration = 5.0  # per HTTP request
    # The fallback (both needed): where the stop-with-savepoint writes, and how to submit the job again.
    savepoint_dir: str | None = None  # e.g. file:///var/flink/savepoints
    restart_command: list[str] | None = None  # argv; "{savepoint}" and "{parallelism}" are filled in
    savepoint_timeout: Duration = 300.0


class FlinkActuator:
    def __init__(self, name: str, config: Config, transport: httpx.BaseTransport | None = None) -> None:
        self.name = name
        self.config = config
        self._transport = transport
        self._client: httpx.Client | None = None
        self.restarted: subprocess.Popen | None = None  # the last restart_command run (it owns the new job)

    # -- HTTP ---------------------------------------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        if self._client is None:  # lazily: building the actuator connects nowhere
            self._client = httpx.Client(
                base_url=self.config.rest_url.rstrip("/"),
                timeout=self.config.timeout,
                transport=self._transport,
            )
        return self._client

    def _call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        try:
            return self.client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise ActuatorError(
                f"flink target {self.name}: {method} {self.config.rest_url}{path}: {type(exc).__name__}"
            ) from None

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        r = self._call(method, path, body)
        if r.status_code >= 400:
            raise ActuatorError(
                f"flink target {self.name}: {method} {path} answered {r.status_code}: {_errors(r)}"
            )
        return r.json() if r.content else {}

    # -- the actuator -------------------------------------------------------------------------------

    def job_id(self) -> str:
        jobs = self._json("GET", "/jobs/overview").get("jobs", [])
        running = [j for j in jobs if j.get("name") == self.config.job_name and j.get("state") == "RUNNING"]
        if not running:
            raise ActuatorError(
                f"flink target {self.name}: no RUNNING job named {self.config.job_name!r} at {self.config.rest_url}"
            )
        return max(running, key=lambda j: j.get("start-time", 0))["jid"]

    def parallelism(self, jid: str) -> dict[str, int]:
        """Each vertex's current parallelism, by vertex id."""
        return {v["id"]: int(v["parallelism"]) for v in self._json("GET", f"/jobs/{jid}").get("vertices", [])}

    def current(self) -> int:
        return max(self.parallelism(self.job_id()).values(), default=0)

    def apply(self, replicas: int) -> ApplyResult:
        if replicas < 1:
            return ApplyResult(
                self.name, replicas, None, error="a Flink job needs a parallelism of at least 1"
            )
        try:
            jid = self.job_id()
            refusal = self._rescale(jid, replicas)
            if refusal is None:
                return ApplyResult(self.name, replicas, replicas, how=RESCALE)
            if not (self.config.savepoint_dir and self.config.restart_command):
                return ApplyResult(
                    self.name,
                    replicas,
                    None,
                    how=RESCALE,
                    error=f"Flink refused the in-place rescale ({refusal}); set savepoint_dir and restart_command "
                    "to rescale by stop-with-savepoint and restart",
                )
            log.info(
                "in-place rescale refused; stop-with-savepoint and restart",
                extra={"target": self.name, "refusal": refusal},
            )
            savepoint = self._stop_with_savepoint(jid)
            self._restart(savepoint, replicas)
            return ApplyResult(self.name, replicas, replicas, how=SAVEPOINT_RESTART)
        except ActuatorError as exc:
            return ApplyResult(self.name, replicas, None, error=str(exc))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- the two ways -------------------------------------------------------------------------------

    def _rescale(self, jid: str, replicas: int) -> str | None:
        """PUT the new upper bounds; None when Flink took them, else why it refused."""
        r = self._call("GET", f"/jobs/{jid}/resource-requirements")
        if r.status_code >= 400:
            return f"GET resource-requirements answered {r.status_code}: {_errors(r)}"
        wanted = requirements_for(r.json(), replicas)
        r = self._call("PUT", f"/jobs/{jid}/resource-requirements", wanted)
        if r.status_code >= 400:
            return f"PUT resource-requirements answered {r.status_code}: {_errors(r)}"
        return None

    def _stop_with_savepoint(self, jid: str) -> str:
        trigger = self._json(
            "POST", f"/jobs/{jid}/stop", {"targetDirectory": self.config.savepoint_dir, "drain": False}
        )
        request_id = trigger["request-id"]
        deadline = time.monotonic() + self.config.savepoint_timeout
        while time.monotonic() < deadline:
            try:
                status = self._json("GET", f"/jobs/{jid}/savepoints/{request_id}")
            except ActuatorError:
                # A cluster that lives in the job's process (the reference job's mini-cluster) exits once the
                # job stopped, sometimes before its COMPLETED status is read: the savepoint on disk says it.
                found = self._savepoint_on_disk(jid)
                if found is not None:
                    return found
                raise
            if status.get("status", {}).get("id") == "COMPLETED":
                op = status.get("operation", {})
                if "location" in op:
                    return op["location"]
                raise ActuatorError(
                    f"flink target {self.name}: stop-with-savepoint failed: {op.get('failure-cause', {}).get('stack-trace', '?')[:300]}"
                )
            time.sleep(0.5)
        raise ActuatorError(
            f"flink target {self.name}: the savepoint did not complete within {self.config.savepoint_timeout:.0f}s"
        )

    def _savepoint_on_disk(self, jid: str) -> str | None:
        """The newest complete savepoint of `jid` under a local `savepoint_dir` (file://), if any."""
        d = self.config.savepoint_dir
        if not d or not d.startswith("file://"):
            return None
        done = [
            sp
            for sp in Path(d.removeprefix("file://")).glob(f"savepoint-{jid[:6]}-*")
            if (sp / "_metadata").is_file()
        ]
        if not done:
            return None
        return "file:" + str(max(done, key=lambda sp: sp.stat().st_mtime))

    def _restart(self, savepoint: str, replicas: int) -> None:
        assert self.config.restart_command
        argv = [
            a.replace("{savepoint}", savepoint).replace("{parallelism}", str(replicas))
            for a in self.config.restart_command
        ]
        try:  # the command submits the job again and may keep running (a local mini-cluster launcher)
            self.restarted = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            raise ActuatorError(f"flink target {self.name}: restart_command failed to start: {exc}") from None


def requirements_for(current: dict[str, Any], replicas: int) -> dict[str, Any]:
    """Every vertex's `upperBound` set to `replicas`, its `lowerBound` kept but never above it. Pure."""
    out = {}
    for vertex, req in current.items():
        bounds = req.get("parallelism", {})
        lower = min(int(bounds.get("lowerBound", 1)), replicas)
        out[vertex] = {"parallelism": {"lowerBound": max(lower, 1), "upperBound": replicas}}
    return out


def _errors(r: httpx.Response) -> str:
    """Flink's `errors` list, reduced to the exception line (its entries are multi-line stack traces)."""
    try:
        errs = [str(e) for e in r.json().get("errors", [])]
    except ValueError:
        errs = []
    lines = [ln.strip() for e in errs for ln in e.splitlines()]
    cause = [ln for ln in lines if "Exception: " in ln] or [
        ln for ln in lines if ln and not ln.startswith("at ")
    ]
    text = " ".join(cause[:2]) if cause else r.text[:200]
    return text[:300] or r.reason_phrase


def build(target_name: str, config: Config) -> FlinkActuator:
    return FlinkActuator(target_name, config)
