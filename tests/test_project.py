"""Project hygiene: the notebook stays plain, and the bento's requirements match the lock file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat

from serving.card import ModelCard
from tests.conftest import ROOT
from tests.fakes import make_card


def test_notebook_has_no_serving_code() -> None:
    notebook = nbformat.read(ROOT / "notebooks" / "iris.ipynb", as_version=4)
    nbformat.validate(notebook)
    source = "\n".join(cell.source for cell in notebook.cells)
    assert "bentoml" not in source.lower()
    for name in ("model =", "X_train", "X_test", "y_test", "RandomForestClassifier", "train_test_split"):
        assert name in source, name


def test_serving_requirements_match_lock() -> None:
    uv = Path(sys.executable).parent / "uv"
    exported = subprocess.run(
        [str(uv), "export", "--frozen", "--no-default-groups", "--no-hashes", "--no-emit-project"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def pins(text: str) -> list[str]:
        return [line for line in text.splitlines() if line and not line.lstrip().startswith("#")]

    committed = (ROOT / "requirements" / "serving.txt").read_text()
    assert pins(committed) == pins(exported), "run `make lock` to re-export requirements/serving.txt"
    assert not any(line.startswith(("nbclient", "ipykernel", "pytest")) for line in pins(committed))


def test_card_round_trips_through_metadata() -> None:
    card = make_card()
    assert ModelCard.from_metadata(card.to_metadata()) == card
