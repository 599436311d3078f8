"""Finding a notebook's requirements and reading their lines (uv itself: tests/e2e/test_notebook_requirements.py)."""

from __future__ import annotations

from pathlib import Path

from train.environment import _names, _normalized, current, requirements_for


def test_the_requirements_beside_the_notebook_or_the_given_file(tmp_path: Path) -> None:
    notebook = tmp_path / "model.ipynb"
    notebook.write_text("{}")
    assert requirements_for(notebook, None) is None
    (tmp_path / "requirements.txt").write_text("lightgbm\n")
    assert requirements_for(notebook, None) == tmp_path / "requirements.txt"
    other = tmp_path / "pins.txt"
    assert requirements_for(notebook, other) == other


def test_requirement_lines_give_their_package_names() -> None:
    lines = (
        "# a comment\nLightGBM==4.7.0\nxgboost-cpu>=3 ; python_version >= '3.10'\n-c constraints.txt\n\nscikit_learn\n"
    )
    assert _names(lines) == ["LightGBM", "xgboost-cpu", "scikit_learn"]
    assert _normalized("Scikit_Learn") == _normalized("scikit-learn") == "scikit-learn"


def test_the_project_environment_is_no_notebook_environment() -> None:
    assert current() is None
