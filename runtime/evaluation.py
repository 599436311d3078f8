"""A classifier's figures from its probabilities and the true labels: on the test split at training, live later.

One computation for both, so the live figures `python -m monitoring.quality` reports compare with the card's.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)

from modelcard.card import ClassMetrics, Metrics

# The headline metrics a gate may name; log loss is the one where lower is better.
METRIC_NAMES = ("accuracy", "balanced_accuracy", "f1_macro", "log_loss", "roc_auc")
LOWER_IS_BETTER = frozenset({"log_loss"})


def labels_as_text(labels: Any) -> np.ndarray:
    """Class labels as the API answers them: text ("yes", "1", "True")."""
    return np.asarray(labels).astype(str)


def evaluate(probabilities: np.ndarray, y_test: Any, class_names: list[str]) -> Metrics:
    """Accuracy, balanced accuracy, macro F1, log loss, ROC AUC, per-class metrics and the confusion matrix."""
    truth = labels_as_text(y_test)
    predicted = np.asarray(class_names)[probabilities.argmax(axis=1)]
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=class_names, zero_division=0
    )
    per_class = {
        name: ClassMetrics(precision=float(p), recall=float(r), f1=float(f), support=int(s))
        for name, p, r, f, s in zip(class_names, precision, recall, f1, support, strict=True)
    }
    binary = len(class_names) == 2
    return Metrics(
        accuracy=float(accuracy_score(truth, predicted)),
        balanced_accuracy=float(balanced_accuracy_score(truth, predicted)),
        f1_macro=float(f1_score(truth, predicted, labels=class_names, average="macro", zero_division=0)),
        log_loss=_defined(lambda: log_loss(truth, probabilities, labels=class_names)),
        roc_auc=_defined(lambda: _roc_auc(truth, probabilities, class_names)),
        positive_class=class_names[1] if binary else None,
        per_class=per_class,
        confusion_matrix=confusion_matrix(truth, predicted, labels=class_names).tolist(),
        n_test=len(truth),
    )


def _roc_auc(truth: np.ndarray, probabilities: np.ndarray, class_names: list[str]) -> float:
    """Binary: ROC AUC of the positive (second) class; multiclass: macro one-vs-rest."""
    if len(class_names) == 2:
        return float(roc_auc_score(truth == class_names[1], probabilities[:, 1]))
    return float(roc_auc_score(truth, probabilities, multi_class="ovr", average="macro", labels=class_names))


def _defined(compute: Any) -> float | None:
    """The metric, or None where the test set cannot define it (a class missing from it)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = float(compute())
    except ValueError:
        return None
    return value if np.isfinite(value) else None


def missed_gate(metrics: Metrics, name: str, threshold: float) -> bool | None:
    """The metric misses its gate (a minimum, or a maximum for log loss); None when it is not defined."""
    value = metrics.value(name)
    if value is None:
        return None
    return (value > threshold) if name in LOWER_IS_BETTER else (value < threshold)


def missed_gates(metrics: Metrics, gates: Mapping[str, float]) -> list[str]:
    """The gates `metrics` misses or cannot be checked against, by name."""
    return [name for name, threshold in gates.items() if missed_gate(metrics, name, threshold) is not False]
