"""A missing test binary fails the tests that need it, unless WATCHTOWER_TEST_ALLOW_MISSING opts out."""

import pytest
from binaries import ALLOW_MISSING, require_binary


@pytest.fixture
def empty_path(tmp_path, monkeypatch):
    (tmp_path / "bin").mkdir()
    exe = tmp_path / "bin" / "present-tool"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.delenv(ALLOW_MISSING, raising=False)
    return exe


def test_a_present_binary_is_returned(empty_path):
    assert require_binary("present-tool", "pkg") == str(empty_path)


def test_a_missing_binary_fails_with_the_install_command(empty_path):
    with pytest.raises(pytest.fail.Exception) as exc:
        require_binary("prometheus", "prometheus")
    assert str(exc.value) == (
        "prometheus is not on PATH: install it with `apt-get install -y prometheus` (./dev test does that as root), "
        f"or set {ALLOW_MISSING}=prometheus to skip the tests that need it"
    )


@pytest.mark.parametrize(
    ("allow", "skips"),
    [("prometheus", True), ("promtool, prometheus", True), ("all", True), ("promtool", False), ("", False)],
)
def test_only_an_explicit_opt_out_skips(empty_path, monkeypatch, allow, skips):
    monkeypatch.setenv(ALLOW_MISSING, allow)
    with pytest.raises(pytest.skip.Exception if skips else pytest.fail.Exception) as exc:
        require_binary("prometheus", "prometheus")
    assert "apt-get install -y prometheus" in str(exc.value)
