"""The one-way dependency graph holds: import-linter's contracts (pyproject.toml) and no runtime cycle.

`lint-imports` checks the static graph; the second test shows it does catch a wrong-way import, on a copy
of the tree. The import check loads every module first in a process of its own (forked from one that has
only third-party libraries loaded), so an import that works only in a lucky order fails here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_import_contracts_are_kept() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_wrong_way_import_breaks_the_contracts(tmp_path: Path) -> None:
    for package in ("watchtower", "pipelines"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    # core (the bottom layer) reaching up into the daemon, and the daemon into the pipeline.
    (tmp_path / "watchtower/core/wrong_way.py").write_text("from watchtower.daemon.daemon import Daemon\n")
    (tmp_path / "watchtower/daemon/wrong_way.py").write_text("import pipelines.produce\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = lint(tmp_path, env)
    assert result.returncode != 0
    out = result.stdout
    assert "2 broken" in out, out
    assert "watchtower.core.wrong_way -> watchtower.daemon.daemon" in out
    assert "watchtower.daemon.wrong_way -> pipelines.produce" in out


# Every module of both packages, imported first in a fresh process each.
_IMPORT_EACH = textwrap.dedent(
    """
    import os, sys, traceback, pkgutil, importlib.util
    # Third-party libraries once, in the parent: the children only differ in watchtower/pipelines state.
    for lib in ("pydantic", "confluent_kafka", "confluent_kafka.admin", "redis", "orjson", "numpy", "yaml",
                "typer", "rich", "prometheus_client", "opentelemetry.sdk.trace", "apscheduler", "httpx",
                "slack_sdk", "pyarrow", "deltalake", "msgspec"):
        try:
            __import__(lib)
        except ImportError:
            pass
    root = sys.argv[1]
    names = []
    for package in ("watchtower", "pipelines"):
        for info in pkgutil.walk_packages([os.path.join(root, package)], package + "."):
            if not info.name.endswith("__main__"):
                names.append(info.name)
    failed = []
    for name in [p for p in ("watchtower", "pipelines")] + names:
        pid = os.fork()
        if pid == 0:
            try:
                __import__(name)
            except BaseException:
                traceback.print_exc()
                os._exit(1)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            failed.append(name)
    print("imported", len(names) + 2, "modules; failed:", failed)
    sys.exit(1 if failed else 0)
    """
)


def test_every_module_imports_on_its_own() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, str(ROOT)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    assert "failed: []" in result.stdout


def test_loading_the_config_and_the_catalog_needs_no_extra() -> None:
    """The collectors registry imports every collector module; pyarrow/deltalake wait for a table read."""
    code = (
        "import sys; from watchtower.settings import load_config; import watchtower.exposition.catalog; "
        "load_config(None, env={}); print(sorted(m for m in ('pyarrow', 'deltalake', 'pyspark', 'pyflink') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
