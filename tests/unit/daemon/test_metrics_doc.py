from pathlib import Path

from watchtower.exposition.catalog import all_specs, markdown

DOC = Path(__file__).parents[3] / "docs" / "metrics.md"


def test_metrics_doc_lists_every_spec() -> None:
    text = DOC.read_text()
    missing = [s.name for _, s in all_specs() if f"| `{s.name}` |" not in text]
    assert not missing, (
        f"regenerate docs/metrics.md (python -m watchtower.exposition.catalog): missing {missing}"
    )


def test_metrics_doc_is_current() -> None:
    assert DOC.read_text() == markdown(), (
        "regenerate docs/metrics.md: python -m watchtower.exposition.catalog > docs/metrics.md"
    )


def test_metric_names_follow_prometheus_conventions() -> None:
    import re

    for _, s in all_specs():
        assert re.fullmatch(r"watchtower_[a-z0-9_]+", s.name), s.name
        assert s.name.endswith("_total") == (s.kind.value == "counter"), s.name
