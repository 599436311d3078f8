"""The dependency audit's verdicts: pip-audit's answers first, PyPI's latest-release advisories for the rest."""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import ROOT


@pytest.fixture
def audit_deps() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_deps", ROOT / "scripts" / "audit_deps.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vulnerabilities_from_either_source_fail_and_unknowns_are_named(
    audit_deps: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    pins = {"flask": "3.1.3", "jinja2": "2.10", "numpy": "2.4.6", "requests": "2.34.2", "offline": "1.0"}
    pip_audit_report: dict[str, Any] = {
        "dependencies": [
            {"name": "flask", "version": "3.1.3", "vulns": []},
            {"name": "jinja2", "version": "2.10", "vulns": [{"id": "GHSA-jinja"}]},
            {"name": "numpy", "skip_reason": "not found"},
            {"name": "requests", "skip_reason": "not found"},
            {"name": "offline", "skip_reason": "not found"},
        ]
    }
    latest = {
        "numpy": ("2.5.5", []),
        "requests": ("2.34.2", [{"id": "PYSEC-requests"}]),
        "offline": None,
    }
    monkeypatch.setattr(audit_deps, "pip_audit", lambda _pins: pip_audit_report)
    monkeypatch.setattr(audit_deps, "latest_release_advisories", latest.get)
    result = audit_deps.audit(pins)
    assert result["vulnerable"] == {"jinja2": ["GHSA-jinja"], "requests": ["PYSEC-requests"]}
    assert result["audited"] == {
        "flask": "pip-audit",
        "jinja2": "pip-audit",
        "requests": "PyPI advisories of the latest release",
    }
    assert set(result["not_audited"]) == {"numpy", "offline"}
    assert "latest 2.5.5" in result["not_audited"]["numpy"]
