"""The predictor: a table of features in, class names out, one path for the API and the UI."""

from __future__ import annotations

import pytest

from runtime.predictor import Predictor, SklearnRuntime, choose_runtime
from tests.fakes import CHURN_ROW, CLASSES, SETOSA, FixedRuntime, make_card, make_churn_card, table_of


def test_predicts_argmax_class_with_all_probabilities() -> None:
    predictor = Predictor("iris_clf:v1", make_card(), FixedRuntime([0.1, 0.7, 0.2]))
    (prediction,) = predictor.predict(table_of(predictor.card.features, [SETOSA]))
    assert prediction.class_name == "versicolor"
    assert prediction.probability == pytest.approx(0.7)
    assert prediction.probabilities == pytest.approx(dict(zip(CLASSES, [0.1, 0.7, 0.2], strict=True)))


def test_records_become_one_typed_column_per_feature() -> None:
    runtime = FixedRuntime([0.3, 0.7])
    predictor = Predictor("churn_clf:v1", make_churn_card(), runtime)
    shuffled = dict(reversed(list(CHURN_ROW.items())))
    predictor.predict(
        table_of(predictor.card.features, [shuffled, {**CHURN_ROW, "contract": "two_year", "totalcharges": 99.5}])
    )
    (table,) = runtime.calls
    assert list(table.columns) == [spec.name for spec in make_churn_card().features]
    assert table.columns["tenure"].tolist() == [12.0, 12.0]
    assert table.columns["contract"].tolist() == ["month-to-month", "two_year"]
    assert str(table.columns["totalcharges"][0]) == "nan" and table.columns["totalcharges"][1] == 99.5
    assert table.columns["seniorcitizen"].tolist() == [0.0, 0.0]


def test_sklearn_runtime_is_used_without_onnx_file(tmp_path, iris_forest_file) -> None:
    card = make_card(runtime="onnx")
    runtime = choose_runtime(iris_forest_file.parent, card, "auto")
    assert isinstance(runtime, SklearnRuntime)
    probabilities = runtime.predict_proba(table_of(card.features, [SETOSA]))
    assert probabilities.shape == (1, 3)


def test_forcing_onnx_without_onnx_file_fails_clearly(iris_forest_file) -> None:
    with pytest.raises(ValueError, match="no ONNX file"):
        choose_runtime(iris_forest_file.parent, make_card(runtime="sklearn"), "onnx")


def test_a_missing_package_is_named_with_its_trained_version(tmp_path, monkeypatch) -> None:
    """A model whose pickle needs a package this environment lacks: one line naming it, not "train it again"."""
    import sys
    from types import SimpleNamespace

    import joblib

    from modelcard.files import CARD_FILE, SKLEARN_FILE
    from runtime.predictor import ModelLoadError, load_predictor

    (tmp_path / "fake_booster.py").write_text("class Booster:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import fake_booster  # type: ignore[import-not-found]

    folder = tmp_path / "model"
    folder.mkdir()
    joblib.dump(fake_booster.Booster(), folder / SKLEARN_FILE)
    card = make_card()
    lineage = card.lineage.model_copy(update={"libraries": {**card.lineage.libraries, "fake-booster": "2.1.0"}})
    (folder / CARD_FILE).write_text(card.model_copy(update={"lineage": lineage}).to_json())
    monkeypatch.delitem(sys.modules, "fake_booster")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    with pytest.raises(ModelLoadError) as refused:
        load_predictor(SimpleNamespace(tag="boosted_clf:v1", path=str(folder)), "auto")  # type: ignore[arg-type]
    assert str(refused.value) == (
        "Model boosted_clf:v1 needs the Python package fake-booster==2.1.0, which is not installed here: install it "
        "(`pip install fake-booster==2.1.0`) or serve from a bento built with it."
    )
