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
