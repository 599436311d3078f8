"""Measure a trained classifier on its test set, and pick the rows the card keeps."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)

from modelcard.card import ClassMetrics, FeatureKind, FeatureSpec, Metrics
from runtime.table import FeatureTable

EXAMPLES_PER_CLASS = 2
REFERENCE_ROWS = 1000
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


def reference_rows(features: list[FeatureSpec], X_train: pd.DataFrame, y_train: Any) -> list[dict[str, Any]]:
    """The training rows (every column, blanks as null) with their labels, evenly thinned to REFERENCE_ROWS."""
    step = max(1, -(-len(X_train) // REFERENCE_ROWS))
    rows = FeatureTable.from_frame(features, X_train.iloc[::step]).records(features)
    labels = labels_as_text(y_train)[::step]
    return [{**row, "label": str(label)} for row, label in zip(rows, labels, strict=True)]


def pick_examples(features: list[FeatureSpec], X_test: pd.DataFrame, y_test: Any, class_names: list[str]) -> list[dict]:
    """A few real test rows of every class that the API accepts as they are, for the UI and the docs."""
    labels = labels_as_text(y_test)
    rows = FeatureTable.from_frame(features, X_test).records(features)
    examples = []
    for name in class_names:
        accepted = [row for row, label in zip(rows, labels, strict=True) if label == name and _accepted(features, row)]
        examples += [{**row, "label": name} for row in accepted[:EXAMPLES_PER_CLASS]]
    return examples


def _accepted(features: list[FeatureSpec], row: dict[str, Any]) -> bool:
    """The row passes the request schema: no blank where training had none, no unseen category, within bounds."""
    for spec in features:
        value = row[spec.name]
        if spec.kind is FeatureKind.UNUSED:
            continue
        if value is None:
            if not spec.nullable:
                return False
        elif spec.categories is not None and value not in spec.categories:
            return False
        elif spec.text is not None and len(value) > spec.text.max_chars:
            return False
        elif spec.lower is not None and spec.upper is not None and not spec.lower <= value <= spec.upper:
            return False
    return True
