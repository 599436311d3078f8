"""Imports run one way: modelcard <- runtime <- {train, monitoring, ui} <- serving <- service.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

# A package may import only packages of a lower layer (and itself); packages of one layer never each other.
LAYERS = {"modelcard": 0, "runtime": 1, "train": 2, "monitoring": 2, "ui": 2, "serving": 3, "service": 4}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    """The project packages `path` imports (at the top or inside a function), with the line of each import."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {(name.split(".")[0], node.lineno) for name in names if name.split(".")[0] in LAYERS}
    return found


def project_modules() -> list[tuple[str, Path]]:
    """(package, file) of every module in the layered packages, service.py included."""
    modules = [("service", ROOT / "service.py")]
    for package in LAYERS:
        if package != "service":
            modules += [(package, path) for path in sorted((ROOT / package).rglob("*.py"))]
    return modules


@pytest.mark.parametrize(("package", "path"), project_modules(), ids=lambda value: str(value).replace(str(ROOT), ""))
def test_imports_run_one_way(package: str, path: Path) -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {other}"
        for other, line in sorted(imported_packages(path))
        if other != package and LAYERS[other] >= LAYERS[package]
    ]
    assert not wrong, "\n".join(wrong)


def test_the_rule_sees_an_import_against_it(tmp_path: Path) -> None:
    """A module of the card importing the runtime, even inside a function, is caught."""
    module = tmp_path / "bad.py"
    module.write_text("import json\n\ndef f():\n    from runtime.table import FeatureTable\n    import serving.auth\n")
    assert imported_packages(module) == {("runtime", 4), ("serving", 5)}
