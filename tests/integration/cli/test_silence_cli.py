"""`watchtower silence add|list|expire` against the real Redis, reading its URL from REDIS_URL."""

from __future__ import annotations

import orjson
import pytest
import redis
from typer.testing import CliRunner

from watchtower.alerting.store import AlertStore
from watchtower.cli.app import app
from watchtower.core.types import labels

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(redis_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.delenv("WATCHTOWER_CONFIG", raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_add_list_expire(cli, redis_client: redis.Redis) -> None:
    r = cli(
        "silence",
        "add",
        "rule=lag_high",
        'group=~"orders.*"',
        "--duration",
        "2h",
        "--comment",
        "deploy",
        "--author",
        "ana",
    )
    assert r.exit_code == 0, r.output
    silence_id = r.stdout.strip().splitlines()[-1]

    [s] = AlertStore(redis_client).silences()
    assert s.id == silence_id and s.comment == "deploy" and s.created_by == "ana"
    assert round(s.ends_at - s.starts_at) == 7200
    assert s.matches("lag_high", labels(group="orders-enricher"), s.starts_at + 1)
    assert not s.matches("lag_high", labels(group="payments"), s.starts_at + 1)

    listed = orjson.loads(cli("silence", "list", "--json").stdout)
    assert [x["id"] for x in listed] == [silence_id]
    table = cli("silence", "list")
    assert table.exit_code == 0 and silence_id in table.output and "deploy" in table.output

    assert cli("silence", "expire", silence_id).exit_code == 0
    assert orjson.loads(cli("silence", "list", "--json").stdout) == []
    assert [x["id"] for x in orjson.loads(cli("silence", "list", "--all", "--json").stdout)] == [silence_id]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["silence", "add", "lag_high"], "is not a matcher"),
        (["silence", "add", "group=~("], "not a valid regex"),
        (["silence", "add", "rule=x", "--duration", "soon"], "not a duration"),
        (["silence", "add", "rule=x", "--duration", "0s"], "above zero"),
        (["silence", "expire", "nope"], "no silence 'nope'"),
    ],
)
def test_mistakes_get_one_line_answers(cli, args: list[str], says: str) -> None:
    r = cli(*args)
    assert r.exit_code == 1 and says in r.output and "Traceback" not in r.output


def test_unreachable_redis_never_prints_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    from watchtower.stack.process import free_port

    monkeypatch.setenv("REDIS_URL", f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0")
    monkeypatch.delenv("WATCHTOWER_CONFIG", raising=False)
    r = CliRunner().invoke(app, ["silence", "list"])
    assert r.exit_code == 1 and "cannot reach Redis" in r.output and "hunter2" not in r.output
