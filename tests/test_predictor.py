"""The predictor: probabilities in, class names out, one path for the API and the UI."""

from __future__ import annotations

import numpy as np
import pytest

from serving.predictor import Predictor, SklearnRuntime, choose_runtime
from tests.fakes import CLASSES, SETOSA, FixedRuntime, make_card


def test_predicts_argmax_class_with_all_probabilities() -> None:
    predictor = Predictor("iris_clf:v1", make_card(), FixedRuntime([0.1, 0.7, 0.2]))
    (prediction,) = predictor.predict_rows([[5.0, 3.0, 4.0, 1.3]])
    assert prediction.class_name == "versicolor"
    assert prediction.probability == pytest.approx(0.7)
    assert prediction.probabilities == pytest.approx(dict(zip(CLASSES, [0.1, 0.7, 0.2], strict=True)))


def test_records_are_put_in_card_feature_order() -> None:
    runtime = FixedRuntime([1.0, 0.0, 0.0])
    predictor = Predictor("iris_clf:v1", make_card(), runtime)
    shuffled = dict(reversed(list(SETOSA.items())))
    predictor.predict_records([shuffled, SETOSA])
    assert runtime.calls[0].tolist() == [[5.1, 3.5, 1.4, 0.2], [5.1, 3.5, 1.4, 0.2]]


def test_sklearn_runtime_is_used_without_onnx_file(tmp_path, iris_forest_file) -> None:
    runtime = choose_runtime(iris_forest_file.parent, make_card(runtime="onnx"), "auto")
    assert isinstance(runtime, SklearnRuntime)
    probabilities = runtime.predict_proba(np.array([list(SETOSA.values())]))
    assert probabilities.shape == (1, 3)


def test_forcing_onnx_without_onnx_file_fails_clearly(iris_forest_file) -> None:
    with pytest.raises(ValueError, match="no ONNX file"):
        choose_runtime(iris_forest_file.parent, make_card(runtime="sklearn"), "onnx")
