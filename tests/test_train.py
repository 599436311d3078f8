"""The training step, run for real with nbclient: the example notebooks, mixed data, and notebooks that must fail."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bentoml
import nbformat
import numpy as np
import pytest

from modelcard.card import FeatureKind, ModelCard, read_card
from modelcard.files import EXECUTED_NOTEBOOK_FILE, ONNX_FILE, SKLEARN_FILE
from runtime.predictor import load_predictor
from tests import notebooks
from tests.fakes import table_of
from train.__main__ import main
from train.notebook import file_sha256
from train.pipeline import DEFAULT_NOTEBOOK, TrainOptions, train


def store_tags() -> set[str]:
    return {str(m.tag) for m in bentoml.models.list()}


def card_of(tag: str) -> ModelCard:
    return read_card(Path(bentoml.models.get(tag).path))


def train_notebook(tmp_path: Path, notebook: Path, **options: Any) -> str:
    """Train one notebook into the session's store; return the new tag."""
    return str(train(TrainOptions(notebook=notebook, output_dir=tmp_path / f"build-{notebook.stem}", **options)))


def test_real_notebook_is_stored_with_its_card(trained_tag: str) -> None:
    stored = bentoml.models.get(trained_tag)
    card = card_of(trained_tag)
    assert card.title == "Iris species classifier"
    assert card.feature_names == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert {f.kind for f in card.features} == {FeatureKind.NUMBER}
    assert card.feature("petal_length").unit == "cm" and card.feature("petal_length").label == "Petal length (cm)"
    assert card.class_names == ["setosa", "versicolor", "virginica"]
    metrics = card.metrics
    assert metrics.accuracy >= 0.9 and metrics.balanced_accuracy >= 0.9 and metrics.f1_macro >= 0.9
    assert metrics.roc_auc is not None and metrics.roc_auc > 0.95 and metrics.positive_class is None
    assert metrics.log_loss is not None and 0 < metrics.log_loss < 0.5
    assert metrics.n_test == 45 and sum(map(sum, metrics.confusion_matrix)) == 45
    assert card.gates == {"accuracy": 0.9}
    petal = card.feature("petal_length")
    assert petal.stats is not None and petal.stats.min == 1.0
    # Bounds from the data: one training range beyond either end, but never below zero for a length.
    span = petal.stats.max - petal.stats.min
    assert (petal.lower, petal.upper) == (0.0, pytest.approx(petal.stats.max + span))
    assert card.lineage.notebook_sha256 == file_sha256(DEFAULT_NOTEBOOK)
    assert card.lineage.git_commit and len(card.lineage.git_commit) == 40
    assert {"scikit-learn", "numpy", "pandas", "python"} <= set(card.lineage.libraries)
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


def test_reference_rows_carry_training_data_and_labels(trained_tag: str) -> None:
    card = card_of(trained_tag)
    assert len(card.reference) == card.n_train == 105
    assert {row["label"] for row in card.reference} == set(card.class_names)
    assert set(card.reference[0]) == {*card.feature_names, "label"}


def test_mixed_columns_are_described_by_kind_and_served(tmp_path: Path) -> None:
    tag = train_notebook(tmp_path, notebooks.mixed(tmp_path), gates={"roc_auc": 0.6})
    card = card_of(tag)
    kinds = {f.name: (f.kind.value, f.dtype, f.nullable) for f in card.features}
    assert kinds == {
        "tenure": ("integer", "int64", False),
        "charges": ("number", "float64", True),
        "visits": ("integer", "Int64", True),
        "senior": ("boolean", "bool", False),
        "contract": ("category", "str", False),
        "payment": ("category", "str", True),
        "region": ("category", "category", False),
    }
    contract = card.feature("contract")
    assert set(contract.categories or {}) == {"month", "year", "two_years"}
    assert sum((contract.categories or {}).values()) == card.n_train
    assert card.feature("region").dtype_categories == ["north", "south"]
    assert card.feature("tenure").description == "months as a customer" and card.title == "Mixed example"
    assert card.class_names == ["no", "yes"] and card.metrics.positive_class == "yes"
    assert card.gates == {"roc_auc": 0.6}
    # Reference rows keep every column, categories and blanks included.
    assert set(card.reference[0]) == {*card.feature_names, "label"}
    assert any(row["payment"] is None for row in card.reference)
    predictor = load_predictor(bentoml.models.get(tag), "auto")
    row = {"tenure": 3, "charges": None, "visits": None, "senior": True, "contract": "month", "region": "south"}
    (answer,) = predictor.predict(table_of(predictor.card.features, [row]))
    assert answer.class_name in ("no", "yes") and 0.5 <= answer.probability <= 1


def test_training_twice_gives_the_same_fingerprint_and_predictions(tmp_path: Path) -> None:
    notebook = notebooks.mixed(tmp_path)
    first, second = (train_notebook(tmp_path / str(i), notebook, gates={"roc_auc": 0.6}) for i in range(2))
    assert first != second
    cards = [card_of(first), card_of(second)]
    assert cards[0].lineage.train_fingerprint == cards[1].lineage.train_fingerprint
    assert cards[0].lineage.test_fingerprint == cards[1].lineage.test_fingerprint
    rows = [{k: v for k, v in row.items() if k != "label"} for row in cards[0].reference]
    answers = []
    for tag in (first, second):
        predictor = load_predictor(bentoml.models.get(tag), "auto")
        answers.append([p.probabilities for p in predictor.predict(table_of(predictor.card.features, rows))])
    assert answers[0] == answers[1]


def test_a_preprocessor_kept_apart_is_composed_with_the_model(tmp_path: Path) -> None:
    notebook = notebooks.dict_vectorizer(tmp_path)
    names = {"preprocessor_var": "dv", "x_train_var": "df_train", "x_test_var": "df_test"}
    tag = train_notebook(tmp_path, notebook, **names, gates={"roc_auc": 0.6})
    card = card_of(tag)
    assert card.feature_names == ["tenure", "charges", "contract"]
    assert card.preprocessor == "sklearn.feature_extraction._dict_vectorizer.DictVectorizer"
    assert card.runtime == "sklearn" and "ONNX" in card.runtime_note
    predictor = load_predictor(bentoml.models.get(tag), "auto")
    (answer,) = predictor.predict(
        table_of(predictor.card.features, [{"tenure": 2, "charges": 90.0, "contract": "month"}])
    )
    assert set(answer.probabilities) == {"no", "yes"}


@pytest.mark.parametrize(
    ("make_notebook", "classes"),
    [(notebooks.boolean_labels, ["False", "True"]), (notebooks.integer_labels, ["0", "1"])],
)
def test_boolean_and_integer_labels_are_answered_as_text(
    tmp_path: Path, make_notebook: Callable[[Path], Path], classes: list[str]
) -> None:
    tag = train_notebook(tmp_path, make_notebook(tmp_path))
    card = card_of(tag)
    assert card.class_names == classes and card.metrics.positive_class == classes[1]
    predictor = load_predictor(bentoml.models.get(tag), "auto")
    row = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    assert predictor.predict(table_of(predictor.card.features, [row]))[0].class_name in classes


def test_labels_coded_by_a_label_encoder_are_answered_by_name(tmp_path: Path) -> None:
    tag = train_notebook(tmp_path, notebooks.encoded_labels(tmp_path))
    card = card_of(tag)
    names = ["setosa", "versicolor", "virginica"]
    assert card.class_names == names and list(card.metrics.per_class) == names
    assert {row["label"] for row in card.reference} == set(names) and card.examples[0]["label"] in names
    predictor = load_predictor(bentoml.models.get(tag), "auto")
    row = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    assert predictor.predict(table_of(predictor.card.features, [row]))[0].class_name == "setosa"


def test_cli_prints_new_tag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = store_tags()
    code = main(["--notebook", str(notebooks.good(tmp_path)), "--name", "cli_model", "--output-dir", str(tmp_path)])
    tag = capsys.readouterr().out.strip()
    assert code == 0
    assert store_tags() - before == {tag}
    assert tag.startswith("cli_model:")
    assert (tmp_path / "good.executed.ipynb").is_file()


def test_the_model_is_named_after_its_notebook_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--notebook", str(notebooks.good(tmp_path)), "--output-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("good_clf:")


@pytest.mark.parametrize(
    ("make_notebook", "flags", "exit_code", "message"),
    [
        (notebooks.cell_error, [], 2, "cell 3 raised ValueError: the data file moved"),
        (notebooks.no_model, [], 3, "notebook did not define: model"),
        (notebooks.low_accuracy, [], 4, "test accuracy 0.3333 is below the required 0.9000"),
        (notebooks.good, ["--gate", "roc_auc=0.5", "--gate", "log_loss=0.0001"], 4, "is above the allowed 0.0001"),
        (notebooks.good, ["--min-accuracy", "1.01"], 4, "is below the required 1.0100"),
        (notebooks.regressor, [], 4, "not a scikit-learn classifier"),
        (notebooks.unfitted, [], 4, "is not fitted"),
        (notebooks.numpy_features, [], 4, "must be a pandas DataFrame"),
        (notebooks.datetime_column, [], 4, "column `day` has dtype datetime64"),
        (notebooks.reviews_declaring_a_read_column, [], 4, "change when `price` is replaced by a training value"),
        (notebooks.encoder_of_other_labels, [], 4, "`label_encoder` cannot decode the model's classes"),
        (notebooks.needs_a_training_only_package, [], 4, "the model needs skl2onnx, which a served model would not"),
        (notebooks.mixed_object_column, [], 4, "column `code` mixes value types (int, str)"),
        (notebooks.raises_on_a_row, [], 4, "the model raised on test row 3"),
        (notebooks.helper_module, [], 4, "ModuleNotFoundError: No module named 'iris_helpers'"),
        (notebooks.grid_search_without_refit, [], 4, "GridSearchCV with refit=False, so it kept no fitted model"),
        (notebooks.no_probabilities, [], 4, "LinearSVC (the last step of `model`) has no predict_proba"),
        (notebooks.bad_card_variable, [], 4, "describes features the data does not have: colour"),
        (notebooks.mixed, ["--preprocessor-var", "model"], 4, "do not compose"),
    ],
)
def test_failures_leave_the_store_untouched(
    make_notebook: Callable[[Path], Path],
    flags: list[str],
    exit_code: int,
    message: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    notebook = make_notebook(tmp_path)
    before = store_tags()
    with caplog.at_level(logging.ERROR):
        code = main(["--notebook", str(notebook), "--output-dir", str(tmp_path / "build"), *flags])
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


@pytest.mark.parametrize(
    ("flags", "complaint"),
    [
        (["--name", "not a name!"], "is not valid"),
        (["--gate", "precision=0.5"], "the metric must be one of"),
        (["--gate", "roc_auc=high"], "give a number"),
        (["--gate-vs", "not a tag!"], "is not a model tag"),
        (["--gate-vs-margin", "-0.1"], "is negative"),
    ],
)
def test_bad_flags_are_refused_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], complaint: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        main([*flags, "--output-dir", str(tmp_path)])
    assert caught.value.code == 2
    assert complaint in capsys.readouterr().err


@pytest.mark.parametrize("example", ["churn", "bank_marketing"])
def test_the_tabular_examples_train_with_every_kind_and_their_gate(
    example: str, request: pytest.FixtureRequest
) -> None:
    tag = request.getfixturevalue(f"{example}_tag")
    card = card_of(tag)
    assert card.class_names == ["no", "yes"]
    assert "roc_auc" in card.gates and card.metrics.roc_auc is not None
    assert card.metrics.roc_auc >= card.gates["roc_auc"]
    kinds = {f.kind for f in card.features}
    assert {FeatureKind.INTEGER, FeatureKind.CATEGORY} <= kinds
    for spec in card.features:
        assert spec.title and spec.description, f"{spec.name} has no title or description from the notebook"
    if example == "churn":
        assert card.feature("totalcharges").nullable and card.feature("seniorcitizen").kind is FeatureKind.BOOLEAN
        assert (
            card.feature("contract").categories is not None and "month-to-month" in card.feature("contract").categories
        )
    else:
        balance = card.feature("balance")
        assert balance.stats is not None and balance.stats.min < 0 and balance.lower is not None and balance.lower < 0
        assert sum(1 for f in card.features if f.kind is FeatureKind.CATEGORY) >= 9
        assert any("unknown" in (f.categories or {}) for f in card.features)
    # Served through the predictor as the API would: the first example gets its probabilities.
    predictor = load_predictor(bentoml.models.get(tag), "auto")
    example_row = {k: v for k, v in card.examples[0].items() if k != "label"}
    probabilities = predictor.runtime.predict_proba(table_of(predictor.card.features, [example_row]))
    assert np.isclose(probabilities.sum(), 1.0)
