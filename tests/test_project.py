"""Project hygiene: the notebooks stay plain, names stay neutral, and the bento's requirements match the lock file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from modelcard.card import ModelCard
from tests.conftest import ROOT
from tests.fakes import make_card, make_churn_card


@pytest.mark.parametrize("name", ["iris", "churn", "bank_marketing"])
def test_notebooks_are_plain_with_no_serving_code_and_no_outputs(name: str) -> None:
    notebook = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    source = "\n".join(cell.source for cell in notebook.cells)
    for word in ("bentoml", "onnx", "gradio", "fastapi", "flask"):
        assert word not in source.lower(), word
    for convention in ("model =", "X_train", "X_test", "y_test", "train_test_split", "model_card ="):
        assert convention in source, convention
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), "outputs committed"


def test_nothing_outside_the_iris_example_says_iris() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    words = ("iris", "flower", "species", "sepal", "petal", "setosa", "virginica")
    # The example itself, the docs and tests that use it, and lines naming it as the default notebook or tag.
    allowed = ("README.md", "notebooks/iris.ipynb", "uv.lock", "tests/", "benchmarks/", "examples/", "docs/")
    offenders = []
    for name in tracked:
        if name.startswith(allowed) or name.endswith(".png"):
            continue
        for number, line in enumerate((ROOT / name).read_text(errors="replace").lower().splitlines(), start=1):
            if "iris_clf" in line or "iris.ipynb" in line:
                continue
            # A word that starts there (so "sepal_length" counts, and OverflowError's "flower" does not).
            offenders += [f"{name}:{number}: {w}" for w in words if re.search(rf"(?<![a-z]){w}", line)]
    assert offenders == [], offenders


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


@pytest.mark.parametrize("make", [make_card, make_churn_card])
def test_card_round_trips_through_metadata(make) -> None:  # noqa: ANN001
    card = make()
    assert ModelCard.from_json(card.to_json()) == card
    summary = card.summary()
    assert summary["title"] == card.title and None not in summary.values()  # BentoML's metadata takes no nulls


def test_a_card_written_before_comparisons_reads_as_compared_with_none() -> None:
    written = {key: value for key, value in json.loads(make_card().to_json()).items() if key != "comparison"}
    assert ModelCard.from_json(json.dumps(written)).comparison is None


def test_an_older_card_is_refused_by_name() -> None:
    older = json.dumps({**json.loads(make_card().to_json()), "card_version": 1})
    with pytest.raises(ValueError, match="version 1"):
        ModelCard.from_json(older)
