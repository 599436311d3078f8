"""Behaviour of the trained model, as a user of the service would notice it."""

from __future__ import annotations

import bentoml
import numpy as np
import pytest

from runtime.predictor import Predictor, load_predictor
from tests.fakes import FEATURES, SETOSA, VIRGINICA, table_of


def predict_rows(predictor: Predictor, rows: object) -> list:
    """Predict rows given in the card's feature order."""
    records = [dict(zip(FEATURES, map(float, row), strict=True)) for row in rows]  # type: ignore[attr-defined]
    return predictor.predict(table_of(predictor.card.features, records))


@pytest.fixture(scope="module", params=["onnx", "sklearn"])
def predictor(request: pytest.FixtureRequest, trained_tag: str) -> Predictor:
    return load_predictor(bentoml.models.get(trained_tag), request.param)


def test_known_rows(predictor: Predictor) -> None:
    setosa, virginica = predictor.predict(table_of(predictor.card.features, [SETOSA, VIRGINICA]))
    assert (setosa.class_name, virginica.class_name) == ("setosa", "virginica")
    assert setosa.probability > 0.9


def test_stored_examples_mostly_predicted_as_labelled(predictor: Predictor) -> None:
    examples = predictor.card.examples
    predicted = [p.class_name for p in predictor.predict(table_of(predictor.card.features, examples))]
    labels = [e["label"] for e in examples]
    # Setosa is linearly separable, so none may be missed; the other two overlap a little.
    assert all(p == "setosa" for p, label in zip(predicted, labels, strict=True) if label == "setosa")
    assert sum(p == label for p, label in zip(predicted, labels, strict=True)) >= len(labels) - 1


def test_tiny_noise_does_not_flip_a_confident_prediction(predictor: Predictor) -> None:
    rng = np.random.default_rng(0)
    base = np.array(list(SETOSA.values()))
    rows = base + rng.normal(0, 0.01, size=(50, 4))
    assert {p.class_name for p in predict_rows(predictor, rows)} == {"setosa"}


def test_longer_petals_move_towards_virginica(predictor: Predictor) -> None:
    rows = [[6.3, 2.9, petal, petal / 2.5] for petal in (1.5, 3.5, 4.5, 6.0)]
    virginica = [p.probabilities["virginica"] for p in predict_rows(predictor, rows)]
    assert virginica == sorted(virginica)
    assert virginica[-1] > 0.5


def test_runtimes_agree(trained_tag: str) -> None:
    stored = bentoml.models.get(trained_tag)
    onnx, sklearn = (load_predictor(stored, runtime) for runtime in ("onnx", "sklearn"))
    assert (onnx.runtime.name, sklearn.runtime.name) == ("onnx", "sklearn")
    rows = np.random.default_rng(1).uniform([4, 2, 1, 0.1], [8, 4.5, 7, 2.5], size=(500, 4))
    a, b = predict_rows(onnx, rows), predict_rows(sklearn, rows)
    assert [p.class_name for p in a] == [p.class_name for p in b]
    assert max(abs(p.probability - q.probability) for p, q in zip(a, b, strict=True)) < 1e-5
