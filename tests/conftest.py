"""Shared fixtures: a real embedded broker and a real redis-server per test session.

Every session starts its own tansu and redis-server on free ports, so test runs never collide with each
other or with a developer's stack. Topic and group names are unique per test (`topic_factory`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
import redis
from confluent_kafka.admin import AdminClient, NewTopic
from kafka_support import unique

from watchtower.stack.broker import EmbeddedBroker
from watchtower.stack.redis_server import LocalRedis, redis_server_binary


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker(log_path=tmp_path_factory.mktemp("tansu") / "tansu.log", die_with_parent=True).start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def bootstrap(broker: EmbeddedBroker) -> str:
    return broker.bootstrap_servers


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if redis_server_binary() is None and os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = LocalRedis(workdir=tmp_path_factory.mktemp("redis"), die_with_parent=True).start()
    yield server.url
    server.stop()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def topic_factory(bootstrap: str) -> Callable[..., str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def make(prefix: str = "t", partitions: int = 1) -> str:
        name = unique(prefix)
        for fut in admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=10).values():
            fut.result(timeout=15)
        return name

    return make


@pytest.fixture
def group_factory() -> Callable[[str], str]:
    return lambda prefix="g": unique(prefix)
