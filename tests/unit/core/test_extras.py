"""What needs an extra says which one."""

import pytest

from watchtower.collectors.dlq import table_counter
from watchtower.core.extras import MissingExtra, missing, require_extra


def test_missing_lists_only_what_cannot_be_imported():
    assert missing("json", "watchtower_no_such_module", "os") == ["watchtower_no_such_module"]


def test_require_extra_names_the_feature_the_modules_and_the_command():
    require_extra("spark", "json", what="nothing")  # all there: no error
    with pytest.raises(MissingExtra) as exc:
        require_extra("flink", "json", "watchtower_no_such_module", what="the Flink job")
    assert str(exc.value) == (
        "the Flink job needs watchtower_no_such_module, which the 'flink' extra installs: pip install 'watchtower[flink]'"
    )
    # The command line turns ValueErrors of the setup into one-line errors; import guards still see an ImportError.
    assert isinstance(exc.value, ValueError) and isinstance(exc.value, ImportError)


def test_dlq_table_counter_only_for_a_table_path(tmp_path):
    assert table_counter(None, configured=False) == (None, None)
    counter, skipped = table_counter(str(tmp_path / "dlq"), configured=True)  # this venv has the spark extra
    assert skipped is None and counter.path == str(tmp_path / "dlq") and counter.column == "failure_reason"


# Run in a fresh interpreter where pyarrow cannot be imported, as on a core install (this venv has it).
NO_PYARROW = """
import json, sys
sys.modules["pyarrow"] = None  # `import pyarrow` raises ImportError, find_spec() says it is not there
from watchtower.collectors.base import BuildContext
from watchtower.collectors.dlq import DlqConfig, build
from watchtower.config.models import PipelineConfig
from watchtower.core.extras import MissingExtra

data = sys.argv[1]
ctx = BuildContext(bootstrap_servers="127.0.0.1:9", pipeline=PipelineConfig(data_dir=data, dlq_topic=""))  # never dialled
out = {}
try:
    build(DlqConfig(table=data + "/dlq-configured"), ctx)
    out["configured"] = "built"
except MissingExtra as exc:
    out["configured"] = str(exc)
collector = build(DlqConfig(), ctx)  # the default table, <data_dir>/delta/dlq
reading = collector.collect(now=100.0)
out["default"] = {"samples": len(reading.samples), "detail": reading.detail}
out["pyarrow_loaded"] = sorted(m for m, v in sys.modules.items() if m.startswith("pyarrow") and v is not None)
print(json.dumps(out))
"""


def test_dlq_collector_without_pyarrow(tmp_path):
    import json
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-c", NO_PYARROW, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # A table named in the config cannot be counted: an error naming the field, pyarrow and the extra.
    assert out["configured"] == (
        "counting the DLQ Delta table (daemon.collectors.dlq.table) needs pyarrow, which the 'spark' extra "
        "installs: pip install 'watchtower[spark]'"
    )
    # The default table is skipped with that reason, and the collector runs.
    assert out["default"] == {
        "samples": 0,
        "detail": {"table": {"path": str(tmp_path / "delta" / "dlq"), "skipped": out["configured"]}},
    }
    assert out["pyarrow_loaded"] == []
