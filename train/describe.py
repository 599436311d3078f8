"""Pick the rows the card keeps: its reference rows and its examples (the metrics: runtime/evaluation.py)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from modelcard.card import FeatureKind, FeatureSpec
from runtime.evaluation import labels_as_text
from runtime.table import FeatureTable

EXAMPLES_PER_CLASS = 2
REFERENCE_ROWS = 1000


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
