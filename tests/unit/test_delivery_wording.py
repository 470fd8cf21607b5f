"""The README's delivery promise says what docs/pipeline.md says: the DLQ topic is at-least-once across a crash."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_does_not_promise_more_than_the_pipeline_doc():
    readme = " ".join((ROOT / "README.md").read_text().split())
    pipeline = " ".join((ROOT / "docs" / "pipeline.md").read_text().split())
    assert "at-least-once only for a crash between the flush and step 2" in pipeline
    assert "exactly once across crashes;" not in readme  # the old, unqualified claim
    assert "exactly once per micro-batch, the DLQ topic at least once" in readme
