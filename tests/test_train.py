"""The training step, run for real with nbclient: the real notebook, and notebooks that must not produce a model."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import bentoml
import nbformat
import pytest

from serving.card import ModelCard
from serving.files import EXECUTED_NOTEBOOK_FILE, ONNX_FILE, SKLEARN_FILE
from tests import notebooks
from train.__main__ import main
from train.notebook import file_sha256
from train.pipeline import DEFAULT_NOTEBOOK


def store_tags() -> set[str]:
    return {str(m.tag) for m in bentoml.models.list()}


def test_real_notebook_is_stored_with_its_card(trained_tag: str) -> None:
    stored = bentoml.models.get(trained_tag)
    card = ModelCard.from_metadata(stored.info.metadata)
    assert card.feature_names == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert card.class_names == ["setosa", "versicolor", "virginica"]
    assert card.metrics.accuracy >= 0.9
    assert card.metrics.n_test == 45
    assert sum(map(sum, card.metrics.confusion_matrix)) == 45
    assert set(card.metrics.per_class) == set(card.class_names)
    assert card.feature_stats["petal_length"].min == 1.0
    assert card.feature_limits["petal_length"].gt == 0.0
    assert card.notebook_sha256 == file_sha256(DEFAULT_NOTEBOOK)
    assert card.runtime == "onnx", card.runtime_note
    assert {e["label"] for e in card.examples} == set(card.class_names)
    assert stored.info.labels["source"] == "notebook"


def test_stored_model_carries_files_and_executed_notebook(trained_tag: str) -> None:
    model_dir = Path(bentoml.models.get(trained_tag).path)
    assert (model_dir / SKLEARN_FILE).is_file()
    assert (model_dir / ONNX_FILE).is_file()
    executed = nbformat.read(model_dir / EXECUTED_NOTEBOOK_FILE, as_version=4)
    outputs = [o for cell in executed.cells if cell.cell_type == "code" for o in cell.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs), "plots are kept in the executed notebook"
    assert not any(o.output_type == "error" for o in outputs)


def test_cli_prints_new_tag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = store_tags()
    code = main(["--notebook", str(notebooks.good(tmp_path)), "--name", "cli_model", "--output-dir", str(tmp_path)])
    tag = capsys.readouterr().out.strip()
    assert code == 0
    assert store_tags() - before == {tag}
    assert tag.startswith("cli_model:")
    assert (tmp_path / "good.executed.ipynb").is_file()


@pytest.mark.parametrize(
    ("make_notebook", "exit_code", "message"),
    [
        (notebooks.cell_error, 2, "cell 3 raised ValueError: the data file moved"),
        (notebooks.no_model, 3, "notebook did not define: model"),
        (notebooks.low_accuracy, 4, "below the required 0.9000"),
        (notebooks.regressor, 4, "not a scikit-learn classifier"),
        (notebooks.unfitted, 4, "is not fitted"),
        (notebooks.numpy_features, 4, "must be a pandas DataFrame"),
    ],
)
def test_failures_leave_the_store_untouched(
    make_notebook: Callable[[Path], Path],
    exit_code: int,
    message: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    notebook = make_notebook(tmp_path)
    before = store_tags()
    with caplog.at_level(logging.ERROR):
        code = main(["--notebook", str(notebook), "--output-dir", str(tmp_path / "build")])
    assert code == exit_code
    assert store_tags() == before
    assert message in caplog.text
    assert "nothing was saved to the model store" in caplog.text
    assert capsys.readouterr().out == ""
    assert (tmp_path / "build" / f"{notebook.stem}.executed.ipynb").is_file()


def test_failed_cell_is_kept_in_executed_notebook(tmp_path: Path) -> None:
    notebook = notebooks.cell_error(tmp_path)
    assert main(["--notebook", str(notebook), "--output-dir", str(tmp_path)]) == 2
    executed = json.loads((tmp_path / "cell_error.executed.ipynb").read_text())
    errors = [
        o for c in executed["cells"] if c["cell_type"] == "code" for o in c["outputs"] if o["output_type"] == "error"
    ]
    assert errors[0]["evalue"] == "the data file moved"


def test_bad_model_name_is_refused_before_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--name", "not a name!", "--output-dir", str(tmp_path)])
    assert caught.value.code == 2
    assert "not a valid model name" in capsys.readouterr().err


def test_reference_rows_carry_training_data_and_labels(trained_tag: str) -> None:
    card = ModelCard.from_metadata(bentoml.models.get(trained_tag).info.metadata)
    assert len(card.reference) == card.n_train == 105
    assert {row["label"] for row in card.reference} == set(card.class_names)
    assert set(card.reference[0]) == {*card.feature_names, "label"}
