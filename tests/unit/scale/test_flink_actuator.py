"""The Flink actuator's requests and its choice between an in-place rescale and stop-with-savepoint."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx
import pytest

from watchtower.scale.actuators.flink import (
    RESCALE,
    SAVEPOINT_RESTART,
    Config,
    FlinkActuator,
    requirements_for,
)
from watchtower.scale.base import ActuatorError

JID = "a1b2c3"
# What Flink 2.3's DefaultScheduler answers to GET/PUT resource-requirements (seen on the mini-cluster).
REFUSAL = (
    "<Exception on server side:\njava.lang.UnsupportedOperationException: The DefaultScheduler does not support "
    "changing the parallelism without a job restart. This feature is currently only expected to work with the "
    "AdaptiveScheduler.\n\tat org.apache.flink.runtime.scheduler.SchedulerNG.requestJobResourceRequirements(SchedulerNG.java:225)"
)
V1, V2 = "cbc357ccb763df2852fee8c4fc7d55f2", "90bea66de1c231edf33913ecd54406c1"


class FakeJobManager:
    """Answers as Flink 2's REST API does; `adaptive=False` refuses the resource-requirements PUT."""

    def __init__(self, adaptive: bool = True) -> None:
        self.adaptive = adaptive
        self.requests: list[tuple[str, str, object]] = []
        self.parallelism = {V1: 1, V2: 1}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.method, request.url.path, body))
        path, method = request.url.path, request.method
        if path == "/jobs/overview":
            return httpx.Response(
                200,
                json={
                    "jobs": [
                        {"jid": "old", "name": "ref", "state": "FINISHED", "start-time": 1},
                        {"jid": JID, "name": "ref", "state": "RUNNING", "start-time": 2},
                    ]
                },
            )
        if path == f"/jobs/{JID}" and method == "GET":
            return httpx.Response(
                200,
                json={
                    "jid": JID,
                    "vertices": [{"id": v, "parallelism": p} for v, p in self.parallelism.items()],
                },
            )
        if path == f"/jobs/{JID}/resource-requirements":
            if not self.adaptive:
                return httpx.Response(500, json={"errors": ["Internal server error.", REFUSAL]})
            if method == "GET":
                return httpx.Response(
                    200,
                    json={
                        v: {"parallelism": {"lowerBound": 1, "upperBound": p}}
                        for v, p in self.parallelism.items()
                    },
                )
            assert request.headers["content-type"] == "application/json"
            self.parallelism = {v: r["parallelism"]["upperBound"] for v, r in body.items()}
            return httpx.Response(200, json={})
        if path == f"/jobs/{JID}/stop" and method == "POST":
            return httpx.Response(202, json={"request-id": "trig-1"})
        if path == f"/jobs/{JID}/savepoints/trig-1":
            return httpx.Response(
                200,
                json={
                    "status": {"id": "COMPLETED"},
                    "operation": {"location": "file:/tmp/sp/savepoint-a1b2c3"},
                },
            )
        return httpx.Response(404, json={"errors": ["Not found: " + path]})


def actuator(fake: FakeJobManager, **cfg) -> FlinkActuator:
    return FlinkActuator(
        "ref-target", Config(kind="flink", job_name="ref", **cfg), transport=httpx.MockTransport(fake)
    )


def test_rescale_in_place_puts_every_vertex_upper_bound() -> None:
    fake = FakeJobManager()
    a = actuator(fake)
    assert a.current() == 1
    result = a.apply(3)
    assert result.ok and result.applied == 3 and result.how == RESCALE
    puts = [b for m, p, b in fake.requests if m == "PUT"]
    assert puts == [
        {
            V1: {"parallelism": {"lowerBound": 1, "upperBound": 3}},
            V2: {"parallelism": {"lowerBound": 1, "upperBound": 3}},
        }
    ]
    assert all(
        p.startswith(f"/jobs/{JID}") or p == "/jobs/overview" for _, p, _ in fake.requests
    )  # the RUNNING job
    assert a.current() == 3


def test_refused_without_fallback_config_is_an_error_naming_the_fix() -> None:
    fake = FakeJobManager(adaptive=False)
    result = actuator(fake).apply(2)
    assert not result.ok and result.applied is None
    assert "refused the in-place rescale" in result.error and "savepoint_dir" in result.error
    assert "DefaultScheduler does not support changing the parallelism" in result.error
    assert "SchedulerNG.java" not in result.error  # the exception, not its stack
    assert not any(p.endswith("/stop") for _, p, _ in fake.requests)  # no savepoint without a way back


def test_refused_with_fallback_stops_with_savepoint_and_restarts(tmp_path: Path) -> None:
    fake = FakeJobManager(adaptive=False)
    out = tmp_path / "argv.json"
    cmd = [
        sys.executable,
        "-c",
        f"import json,sys; json.dump(sys.argv[1:], open({str(out)!r}, 'w'))",
        "{savepoint}",
        "{parallelism}",
    ]
    result = actuator(fake, savepoint_dir="file:///tmp/sp", restart_command=cmd).apply(4)
    assert result.ok and result.how == SAVEPOINT_RESTART and result.applied == 4
    [stop] = [b for m, p, b in fake.requests if p.endswith("/stop")]
    assert stop == {"targetDirectory": "file:///tmp/sp", "drain": False}

    deadline = time.monotonic() + 20
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert json.loads(out.read_text()) == ["file:/tmp/sp/savepoint-a1b2c3", "4"]


def test_unreachable_or_absent_job() -> None:
    a = FlinkActuator(
        "t", Config(kind="flink", job_name="nope"), transport=httpx.MockTransport(FakeJobManager())
    )
    with pytest.raises(ActuatorError, match="no RUNNING job named 'nope'"):
        a.current()
    assert "no RUNNING job" in a.apply(2).error

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    b = FlinkActuator("t", Config(kind="flink", job_name="ref"), transport=httpx.MockTransport(down))
    assert "ConnectError" in b.apply(2).error
    assert actuator(FakeJobManager()).apply(0).error


@pytest.mark.parametrize(
    ("current", "n", "expected"),
    [
        (
            {"v": {"parallelism": {"lowerBound": 1, "upperBound": 2}}},
            4,
            {"v": {"parallelism": {"lowerBound": 1, "upperBound": 4}}},
        ),
        (
            {"v": {"parallelism": {"lowerBound": 3, "upperBound": 3}}},
            2,
            {"v": {"parallelism": {"lowerBound": 2, "upperBound": 2}}},
        ),
        (
            {"v": {"parallelism": {"upperBound": 3}}},
            5,
            {"v": {"parallelism": {"lowerBound": 1, "upperBound": 5}}},
        ),
        ({}, 3, {}),
    ],
)
def test_requirements_for(current, n, expected) -> None:
    assert requirements_for(current, n) == expected


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="extra"):
        Config(kind="flink", job_name="x", bogus=1)
