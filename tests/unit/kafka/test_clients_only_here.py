"""Every confluent-kafka client in watchtower/ and pipelines/ is created by watchtower/kafka/clients.py.

The clients module is where settings, secret-redacting logs and error callbacks are decided; a client
built anywhere else bypasses all three. This scans the source (AST, so comments and strings do not count).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]
CLIENT_CLASSES = {"Consumer", "Producer", "AdminClient", "DeserializingConsumer", "SerializingProducer"}
ALLOWED = {Path("watchtower/kafka/clients.py")}


def raw_constructions(source: str) -> list[tuple[int, str]]:
    """(line, class) of every call of a confluent-kafka client class, by name or attribute."""
    tree = ast.parse(source)
    imported = {  # local names bound to confluent-kafka client classes (`from confluent_kafka import X as Y`)
        alias.asname or alias.name: alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("confluent_kafka")
        for alias in node.names
        if alias.name in CLIENT_CLASSES
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in imported:
            found.append((node.lineno, imported[f.id]))
        elif isinstance(f, ast.Attribute) and f.attr in CLIENT_CLASSES:
            found.append((node.lineno, f.attr))
    return found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from confluent_kafka import Consumer\nc = Consumer({})", [(2, "Consumer")]),
        ("from confluent_kafka.admin import AdminClient as A\na = A({})", [(2, "AdminClient")]),
        ("import confluent_kafka\np = confluent_kafka.Producer({})", [(2, "Producer")]),
        ("from confluent_kafka import Consumer\ndef f(c: Consumer) -> Consumer: ...", []),
        ("# Consumer({})\ns = 'Producer({})'", []),
    ],
)
def test_the_scan_finds_constructions_only(source: str, expected: list[tuple[int, str]]) -> None:
    assert raw_constructions(source) == expected


def test_no_confluent_kafka_client_is_built_outside_the_clients_module() -> None:
    offenders = []
    for package in ("watchtower", "pipelines"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if rel in ALLOWED:
                continue
            offenders += [f"{rel}:{line}: {cls}(...)" for line, cls in raw_constructions(path.read_text())]
    assert not offenders, (
        "build Kafka clients through watchtower/kafka/clients.py (admin/producer/consumer or *_from):\n"
        + "\n".join(offenders)
    )
