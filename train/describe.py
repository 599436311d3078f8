"""Measure a trained classifier and its data into a ModelCard."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from serving.card import ClassMetrics, FeatureLimits, FeatureStats, Metrics

EXAMPLES_PER_CLASS = 2


def evaluate(predicted: np.ndarray, y_test: Any, class_names: list[str]) -> Metrics:
    """Accuracy, per-class metrics and the confusion matrix on the test set."""
    truth = np.asarray(y_test).astype(str)
    predicted = np.asarray(predicted).astype(str)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=class_names, zero_division=0
    )
    per_class = {
        name: ClassMetrics(precision=float(p), recall=float(r), f1=float(f), support=int(s))
        for name, p, r, f, s in zip(class_names, precision, recall, f1, support, strict=True)
    }
    matrix = confusion_matrix(truth, predicted, labels=class_names)
    return Metrics(
        accuracy=float(accuracy_score(truth, predicted)),
        per_class=per_class,
        confusion_matrix=matrix.tolist(),
        n_test=len(truth),
    )


def feature_stats(X_train: pd.DataFrame) -> dict[str, FeatureStats]:
    """Min, max, mean and standard deviation of every training feature."""
    return {
        str(name): FeatureStats(
            min=float(column.min()), max=float(column.max()), mean=float(column.mean()), std=float(column.std())
        )
        for name, column in X_train.items()
    }


def feature_limits(stats: dict[str, FeatureStats], factor: float) -> dict[str, FeatureLimits]:
    """Accepted range per feature: above 0 if all training values were, at most `factor` training spans past the max."""
    limits = {}
    for name, s in stats.items():
        span = (s.max - s.min) or abs(s.max) or 1.0
        lower = 0.0 if s.min > 0 else s.min - factor * span
        limits[name] = FeatureLimits(gt=round(lower, 6), le=round(s.max + factor * span, 6))
    return limits


REFERENCE_ROWS = 1000


def reference_rows(X_train: pd.DataFrame, y_train: Any) -> list[dict[str, Any]]:
    """The training rows with their labels, evenly thinned to at most REFERENCE_ROWS."""
    labels = np.asarray(y_train).astype(str)
    step = max(1, -(-len(X_train) // REFERENCE_ROWS))
    rows = X_train.iloc[::step]
    return [
        {**{str(k): float(v) for k, v in row.items()}, "label": label}
        for (_, row), label in zip(rows.iterrows(), labels[::step], strict=True)
    ]


def pick_examples(X_test: pd.DataFrame, y_test: Any, class_names: list[str]) -> list[dict[str, Any]]:
    """A few real test rows of every class, for the UI and the docs."""
    labels = np.asarray(y_test).astype(str)
    examples = []
    for name in class_names:
        rows = X_test[labels == name].head(EXAMPLES_PER_CLASS)
        for _, row in rows.iterrows():
            examples.append({**{str(k): float(v) for k, v in row.items()}, "label": name})
    return examples
