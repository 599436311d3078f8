"""Which category and text features the model answers for a value training never saw, found by asking it.

A notebook's encoder decides what an unseen category does: `OneHotEncoder(handle_unknown="ignore")` or
`"infrequent_if_exist"`, an `OrdinalEncoder` with `unknown_value`, native categorical support, or an error.
Training sends test rows with one feature at a time set to a value no training row had, to the served
model: the scikit-learn model, and the ONNX file too when there is one (it must answer alike). Only where
both answer may a deployment accept such values (SERVING_UNSEEN_CATEGORIES=accept, serving/settings.py).
A pandas `category` column is never probed: its dtype has a fixed set of values, and a new one would reach
the model as a blank, a silent guess. Free text must be answered (a vectorizer ignores words it never saw);
text the model refuses is served as a category of its training values after all (`text_refused_as_category`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from modelcard.card import FeatureKind, FeatureSpec
from train.compile import PROBABILITY_TOLERANCE
from train.features import describe_column

logger = logging.getLogger(__name__)

PROBE_ROWS = 20
UNSEEN_VALUE = "value-never-seen-in-training"

# Probabilities of rows as the service would compute them (the ONNX runtime through its feature table).
Predict = Callable[[pd.DataFrame], np.ndarray]


def probe_rows(spec: FeatureSpec, X_test: pd.DataFrame) -> pd.DataFrame:
    """A few test rows with `spec`'s feature set to a value training never saw."""
    rows = X_test.head(PROBE_ROWS).copy()
    unseen = UNSEEN_VALUE
    while unseen in (spec.categories or {}):
        unseen += "-"
    rows[spec.name] = pd.Series([unseen] * len(rows), index=rows.index, dtype=rows[spec.name].dtype)
    return rows


def probe_unseen(
    model: Any, features: list[FeatureSpec], X_test: pd.DataFrame, served: Predict | None
) -> list[FeatureSpec]:
    """`features` with `unseen_answered` set for every category and text feature: True where the model answers alike."""
    probed = []
    for spec in features:
        if spec.kind not in (FeatureKind.CATEGORY, FeatureKind.TEXT):
            probed.append(spec)
            continue
        answered = spec.dtype != "category" and _answers(model, probe_rows(spec, X_test), served)
        probed.append(spec.model_copy(update={"unseen_answered": answered}))
    tolerant = [spec.name for spec in probed if spec.kind is FeatureKind.CATEGORY and spec.unseen_answered]
    if any(spec.kind is FeatureKind.CATEGORY for spec in probed):
        logger.info("The model answers a category value it never saw for: %s", ", ".join(tolerant) or "none")
    return probed


def text_refused_as_category(
    features: list[FeatureSpec],
    X_train: pd.DataFrame,
    X_test: pd.DataFrame,
    limit_factor: float,
    notes: dict[str, dict[str, Any]],
) -> list[FeatureSpec]:
    """`features` with every text feature the model refuses new values of described as a category instead."""
    settled = []
    for spec in features:
        if spec.kind is not FeatureKind.TEXT or spec.unseen_answered:
            settled.append(spec)
            continue
        logger.warning(
            "Column `%s` looks like free text, but the model fails on a value training never saw (an encoder with "
            "handle_unknown='error'?): served as a category, a request must send one of its training values",
            spec.name,
        )
        note = notes.get(spec.name, {})
        category = describe_column(
            spec.name, X_train[spec.name], X_test[spec.name], limit_factor, note, as_category=True
        )
        settled.append(category.model_copy(update={"unseen_answered": False}))
    return settled


def _answers(model: Any, rows: pd.DataFrame, served: Predict | None) -> bool:
    """The model gives every row finite probabilities that sum to one, and the served runtime the same ones."""
    try:
        expected = np.asarray(model.predict_proba(rows), dtype=np.float64)
    except Exception:  # the encoder refuses the value: exactly what this asks
        return False
    if not (np.isfinite(expected).all() and np.allclose(expected.sum(axis=1), 1.0, atol=1e-6)):
        return False
    if served is None:
        return True
    try:
        got = served(rows)
    except Exception:
        return False
    return got.shape == expected.shape and float(np.abs(got - expected).max(initial=0.0)) <= PROBABILITY_TOLERANCE
