"""Small hand-made objects for unit tests: a model card and a runtime with fixed answers."""

from __future__ import annotations

import numpy as np

from serving.card import ClassMetrics, FeatureLimits, FeatureStats, Metrics, ModelCard

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLASSES = ["setosa", "versicolor", "virginica"]
SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
VIRGINICA = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}


def make_card(runtime: str = "sklearn") -> ModelCard:
    """A card shaped like the iris model's, with round numbers."""
    stats = {name: FeatureStats(min=1.0, max=7.0, mean=4.0, std=1.0) for name in FEATURES}
    return ModelCard(
        feature_names=FEATURES,
        class_names=CLASSES,
        metrics=Metrics(
            accuracy=0.95,
            per_class={c: ClassMetrics(precision=0.95, recall=0.95, f1=0.95, support=10) for c in CLASSES},
            confusion_matrix=[[10, 0, 0], [0, 9, 1], [0, 1, 9]],
            n_test=30,
        ),
        feature_stats=stats,
        feature_limits={name: FeatureLimits(gt=0.0, le=70.0) for name in FEATURES},
        examples=[
            {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2, "label": "setosa"}
        ],
        estimator="sklearn.ensemble.RandomForestClassifier",
        sklearn_version="1.9.1",
        runtime=runtime,
        notebook="notebooks/iris.ipynb",
        notebook_sha256="0" * 64,
        n_train=120,
    )


class FixedRuntime:
    """Answers the same probabilities for every row and records what it was given."""

    name = "fixed"

    def __init__(self, probabilities: list[float]) -> None:
        self.probabilities = np.array(probabilities)
        self.calls: list[np.ndarray] = []

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        self.calls.append(features)
        return np.tile(self.probabilities, (len(features), 1))
