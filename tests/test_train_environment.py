"""Finding a notebook's requirements and reading their lines (uv itself: tests/e2e/test_notebook_requirements.py)."""

from __future__ import annotations

from pathlib import Path

from runtime.predictor import normalized_name
from train.environment import _locked_pins_moved, current, requirement_names, requirements_for


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
    assert requirement_names(lines) == ["LightGBM", "xgboost-cpu", "scikit_learn"]
    assert normalized_name("Scikit_Learn") == normalized_name("scikit-learn") == "scikit-learn"


def test_the_project_environment_is_no_notebook_environment() -> None:
    assert current() is None


def test_a_pin_that_moves_a_locked_package_is_named_with_the_locked_version() -> None:
    lock = "numpy==2.4.6\nscipy==1.17.1 ; python_version >= '3.11'\n"
    wanted = "lightgbm\nnumpy==1.26.4  # the tutorial's\nscipy>=1.10\nNumPy<3\n"
    assert _locked_pins_moved(wanted, lock) == ["it asks for numpy==1.26.4, the project locks numpy 2.4.6"]
