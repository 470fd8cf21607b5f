"""The docs name files that exist, and docs/collectors.md lists the registry as collectors/registry.py holds it."""

import re
from pathlib import Path

from watchtower.collectors.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
PATH = re.compile(r"`((?:watchtower|tests|dashboards|alerts|docs)/[A-Za-z0-9_./-]+)`")


def test_every_repository_path_the_docs_name_exists():
    docs = [*ROOT.glob("*.md"), *(ROOT / "docs").glob("*.md")]
    stale = sorted(
        f"{doc.relative_to(ROOT)}: {path}"
        for doc in docs
        for path in PATH.findall(doc.read_text())
        if not (ROOT / path.rstrip(".")).exists()
    )
    assert not stale, f"the docs name files that do not exist (moved? update the doc): {stale}"


def _registry_modules(text: str, where: str) -> list[str]:
    listed = re.search(r"REGISTRY = CollectorKinds\(\s*\[(.*?)\]", text, re.S)
    assert listed, f"{where}: the REGISTRY list is gone"
    return re.findall(r"(\w+)\.KIND", listed.group(1))


def test_the_collectors_doc_lists_every_registered_kind_in_order():
    source = _registry_modules((ROOT / "watchtower/collectors/registry.py").read_text(), "registry.py")
    assert len(source) == len(REGISTRY.names())  # the source list is the registry (one module per kind)
    doc = _registry_modules((ROOT / "docs" / "collectors.md").read_text(), "docs/collectors.md")
    assert doc == [*source, "queue_depth"]  # the registry plus the doc's worked example
