"""The Prometheus configuration and alert rules pass promtool's checks and their own unit tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run Debian's promtool (installed with the prometheus package by `make test`)."""
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: `make test` installs Debian's prometheus package"
    return subprocess.run([binary, *map(str, args)], capture_output=True, text=True, cwd=PROMETHEUS)


def test_scrape_config_and_rules_are_valid() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_rules_pass_check_rules() -> None:
    result = promtool("check", "rules", "rules/classifier.rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_unit_tests_pass() -> None:
    result = promtool("test", "rules", "rules/classifier.rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("find", "replace"),
    [
        ("> 0.01", "> 0.5"),  # the error-rate alert would no longer fire at 10% errors
        ("for: 30m", "for: 3h"),  # the low-confidence alert would fire too late for its test
        ("- 0.05", "- 0.15"),  # live accuracy 0.8 against a test accuracy of 0.9 would no longer alert
        (">= 500", ">= 100"),  # 340 outcomes, half of them wrong, would alert
    ],
)
def test_unit_tests_catch_a_changed_threshold(tmp_path: Path, find: str, replace: str) -> None:
    rules = (PROMETHEUS / "rules" / "classifier.rules.yml").read_text()
    assert find in rules
    (tmp_path / "classifier.rules.yml").write_text(rules.replace(find, replace, 1))
    shutil.copy(PROMETHEUS / "rules" / "classifier.rules.test.yml", tmp_path)
    result = promtool("test", "rules", tmp_path / "classifier.rules.test.yml")
    assert result.returncode != 0
