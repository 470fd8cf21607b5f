"""stack.json and URL masking: pure, no processes."""

import pytest

from watchtower.stack import Endpoints
from watchtower.stack.stack import _host_port
from watchtower.stack.state import (
    EMBEDDED,
    EXTERNAL,
    BrokerPart,
    RedisPart,
    StackInfo,
    load_state,
    mask_url,
    save_state,
)


@pytest.mark.parametrize(
    "url, shown",
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
        ("rediss://user:p%40ss@cache.example.com:6380/2", "rediss://user:***@cache.example.com:6380/2"),
        ("redis://user:pw@[::1]:6379", "redis://user:***@[::1]:6379"),
        ("redis://host", "redis://host"),
        ("", ""),
    ],
)
def test_mask_url(url, shown):
    assert mask_url(url) == shown


def test_state_round_trip_leaves_out_the_transient_flag(tmp_path):
    info = StackInfo(
        BrokerPart(EMBEDDED, "127.0.0.1:9092", pid=11, port=9092, log="/tmp/tansu.log"),
        RedisPart(EXTERNAL, "redis://:***@r:6379/0", requested="redis://:***@r:6379/0"),
        topics={"orders": 6, "orders.dlq": 3},
        started_at=1.5,
        already_running=True,
    )
    save_state(tmp_path, info)
    assert "already_running" not in (tmp_path / "stack.json").read_text()
    loaded = load_state(tmp_path)
    assert loaded.already_running is False
    loaded.already_running = True
    assert loaded == info


@pytest.mark.parametrize("text", ["", "{", "[]", '{"broker": {}}'])
def test_unreadable_state_is_no_state(tmp_path, text):
    (tmp_path / "stack.json").write_text(text)
    assert load_state(tmp_path) is None


def test_missing_state_is_no_state(tmp_path):
    assert load_state(tmp_path / "nowhere") is None


def test_endpoints_repr_masks_the_password():
    ends = Endpoints("b:9092", "redis://:s3cret@r:6379/0")
    assert "s3cret" not in repr(ends) and "s3cret" not in str(ends)
    assert ends.redis_url == "redis://:s3cret@r:6379/0"


@pytest.mark.parametrize(
    "servers, expected",
    [
        ("127.0.0.1:9092", ("127.0.0.1", 9092)),
        ("a:1,b:2", ("a", 1)),
        ("SASL_SSL://broker.example:9093", ("broker.example", 9093)),
        ("[::1]:9092", ("::1", 9092)),
        ("broker", ("broker", 9092)),
    ],
)
def test_host_port(servers, expected):
    assert _host_port(servers) == expected
