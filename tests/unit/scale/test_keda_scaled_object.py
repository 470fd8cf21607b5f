"""The generated ScaledObject against KEDA's published CRD schema (v2.20.2, tests/schemas/keda/), and the
`watchtower scaling keda` command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from watchtower.cli.app import app
from watchtower.scale.keda import scaled_object

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "keda"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    crd = yaml.safe_load((SCHEMAS / "keda.sh_scaledobjects.yaml").read_text())
    assert crd["spec"]["names"]["kind"] == "ScaledObject"
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return version["schema"]["openAPIV3Schema"]


def unknown_fields(doc: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields the schema does not declare: the API server would prune them silently, so none may exist."""
    out = []
    if isinstance(doc, dict) and "properties" in schema:
        for key, value in doc.items():
            if key not in schema["properties"]:
                out.append(f"{path}.{key}")
            else:
                out += unknown_fields(value, schema["properties"][key], f"{path}.{key}")
    elif isinstance(doc, list) and "items" in schema:
        for i, item in enumerate(doc):
            out += unknown_fields(item, schema["items"], f"{path}[{i}]")
    return out


def manifest(**kw: Any) -> dict[str, Any]:
    args = {
        "watchtower_url": "http://watchtower.ops:9108/",
        "scale_target": "enricher",
        "namespace": "ops",
    } | kw
    return scaled_object("enricher", **args)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"kind": "StatefulSet", "min_replicas": 0, "max_replicas": 12},
        {"value_location": "decision.desired"},
    ],
)
def test_manifest_is_valid_against_kedas_crd_and_prunes_nothing(schema, kw) -> None:
    doc = manifest(**kw)
    jsonschema.validate(doc, schema, cls=jsonschema.Draft7Validator)
    assert unknown_fields(doc, schema) == []
    assert doc["apiVersion"] == "keda.sh/v1alpha1"


def test_trigger_reads_watchtowers_decision_with_replicas_passed_through() -> None:
    [trigger] = manifest()["spec"]["triggers"]
    assert trigger["type"] == "metrics-api" and trigger["metricType"] == "AverageValue"
    md = trigger["metadata"]
    assert md["url"] == "http://watchtower.ops:9108/api/v1/scaling/enricher"
    assert md["valueLocation"] == "desired" and md["targetValue"] == "1" and md["format"] == "json"
    assert all(isinstance(v, str) for v in md.values())  # trigger metadata is map[string]string
    known = {
        ln.strip()
        for ln in (SCHEMAS / "metrics_api_scaler_keys.txt").read_text().splitlines()
        if ln and not ln.startswith("#")
    }
    assert set(md) <= known, set(md) - known
    # The HPA's AverageValue formula: ceil(value / targetValue) replicas = watchtower's desired count.
    for desired in (1, 3, 7):
        assert -(-desired // int(md["targetValue"])) == desired


def test_schema_catches_what_it_should(schema) -> None:
    bad = manifest()
    bad["spec"]["minReplicaCount"] = "one"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema, cls=jsonschema.Draft7Validator)
    no_triggers = manifest()
    del no_triggers["spec"]["triggers"]
    with pytest.raises(jsonschema.ValidationError, match="triggers"):
        jsonschema.validate(no_triggers, schema, cls=jsonschema.Draft7Validator)
    with pytest.raises(ValueError, match="min_replicas"):
        manifest(min_replicas=5, max_replicas=2)


def test_cli_writes_the_manifest(tmp_path: Path, schema) -> None:
    out = tmp_path / "so.yaml"
    result = CliRunner().invoke(
        app,
        [
            "scaling",
            "keda",
            "enricher",
            "--scale-target",
            "enricher",
            "--watchtower-url",
            "http://wt:9108",
            "-n",
            "ops",
            "--min",
            "1",
            "--max",
            "6",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(out.read_text())
    jsonschema.validate(doc, schema, cls=jsonschema.Draft7Validator)
    assert doc["spec"]["maxReplicaCount"] == 6 and doc["metadata"]["namespace"] == "ops"
    bad = CliRunner().invoke(
        app, ["scaling", "keda", "x", "--scale-target", "x", "--watchtower-url", "u", "--kind", "Pod"]
    )
    assert bad.exit_code == 2 and "--kind must be Deployment or StatefulSet" in bad.output
