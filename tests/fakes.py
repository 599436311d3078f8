"""Small hand-made objects for unit tests: model cards (iris-like and churn-like) and a runtime with fixed answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from modelcard.card import ClassMetrics, FeatureKind, FeatureSpec, Lineage, Metrics, ModelCard, NumericStats, TextStats
from runtime.table import FeatureTable, TableBuilder
from serving.codecs import record_rows

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLASSES = ["setosa", "versicolor", "virginica"]
SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
VIRGINICA = {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}

CONTRACTS = {"month-to-month": 55, "two_year": 25, "one_year": 20}
PAYMENTS = {"electronic_check": 34, "mailed_check": 23, "bank_transfer": 22, "credit_card": 21}
CHURN_ROW = {
    "tenure": 12,
    "monthlycharges": 70.5,
    "totalcharges": None,
    "seniorcitizen": False,
    "contract": "month-to-month",
    "paymentmethod": "electronic_check",
}


def number(name: str, low: float, high: float, *, integer: bool = False, nullable: bool = False) -> FeatureSpec:
    """A numeric feature with round statistics and bounds one range beyond the training range."""
    span = high - low
    return FeatureSpec(
        name=name,
        kind=FeatureKind.INTEGER if integer else FeatureKind.NUMBER,
        dtype=("Int64" if nullable else "int64") if integer else "float64",
        nullable=nullable,
        missing=3 if nullable else 0,
        stats=NumericStats(
            min=low,
            max=high,
            mean=(low + high) / 2,
            std=span / 4,
            quantiles=[low + span * i / 10 for i in range(11)],
        ),
        lower=low - span,
        upper=high + span,
    )


def category(name: str, counts: dict[str, int], *, nullable: bool = False) -> FeatureSpec:
    """A text feature with its training counts."""
    return FeatureSpec(
        name=name,
        kind=FeatureKind.CATEGORY,
        dtype="str",
        nullable=nullable,
        missing=2 if nullable else 0,
        categories=counts,
    )


def _metrics(classes: list[str]) -> Metrics:
    size = len(classes)
    return Metrics(
        accuracy=0.95,
        balanced_accuracy=0.94,
        f1_macro=0.94,
        log_loss=0.2,
        roc_auc=0.97,
        positive_class=classes[1] if size == 2 else None,
        per_class={c: ClassMetrics(precision=0.95, recall=0.95, f1=0.95, support=10) for c in classes},
        confusion_matrix=[[10 if i == j else 0 for j in range(size)] for i in range(size)],
        n_test=10 * size,
    )


def _lineage() -> Lineage:
    return Lineage(
        notebook="notebooks/example.ipynb",
        notebook_sha256="0" * 64,
        train_fingerprint="1" * 64,
        test_fingerprint="2" * 64,
        libraries={"scikit-learn": "1.9.1"},
    )


def make_card(runtime: str = "sklearn") -> ModelCard:
    """A card shaped like the iris model's, with round numbers."""
    return ModelCard(
        title="Iris species classifier",
        features=[number(name, 1.0, 7.0) for name in FEATURES],
        class_names=CLASSES,
        metrics=_metrics(CLASSES),
        gates={"accuracy": 0.9},
        examples=[{**SETOSA, "label": "setosa"}],
        reference=[{**SETOSA, "label": "setosa"}, {**VIRGINICA, "label": "virginica"}],
        estimator="sklearn.ensemble.RandomForestClassifier",
        runtime=runtime,
        lineage=_lineage(),
        n_train=120,
    )


def make_churn_card(runtime: str = "sklearn") -> ModelCard:
    """A card with every kind of feature: integer, number with blanks, boolean, categories; yes/no classes."""
    features = [
        number("tenure", 0, 72, integer=True),
        number("monthlycharges", 18.0, 120.0),
        number("totalcharges", 18.0, 8700.0, nullable=True),
        FeatureSpec(name="seniorcitizen", kind=FeatureKind.BOOLEAN, dtype="bool", nullable=False, true_count=16),
        category("contract", CONTRACTS),
        category("paymentmethod", PAYMENTS, nullable=True),
    ]
    return ModelCard(
        title="Telco customer churn",
        features=features,
        class_names=["no", "yes"],
        metrics=_metrics(["no", "yes"]),
        gates={"roc_auc": 0.8},
        examples=[{**CHURN_ROW, "label": "yes"}],
        reference=[
            {**CHURN_ROW, "label": "yes"},
            {**CHURN_ROW, "tenure": 60, "totalcharges": 4000.0, "contract": "two_year", "label": "no"},
        ],
        estimator="sklearn.pipeline.Pipeline",
        runtime=runtime,
        lineage=_lineage(),
        n_train=100,
    )


class FixedRuntime:
    """Answers the same probabilities for every row and records the tables it was given."""

    name = "fixed"

    def __init__(self, probabilities: list[float]) -> None:
        self.probabilities = np.array(probabilities)
        self.calls: list[FeatureTable] = []

    def predict_proba(self, table: FeatureTable) -> np.ndarray:
        self.calls.append(table)
        return np.tile(self.probabilities, (table.rows, 1))


def table_of(features: Sequence[FeatureSpec], records: Sequence[Mapping[str, Any]]) -> FeatureTable:
    """{feature name: value} records as the table a request for them becomes (as the UI's records do)."""
    return TableBuilder(features).from_rows(record_rows(records, features))


def spread(low: float, high: float) -> NumericStats:
    """Statistics with deciles evenly spaced over [low, high]."""
    span = high - low
    return NumericStats(
        min=low, max=high, mean=(low + high) / 2, std=span / 4, quantiles=[low + span * i / 10 for i in range(11)]
    )


def text_feature(name: str, vocabulary: list[str], chars: NumericStats, unseen_word_share: float) -> FeatureSpec:
    """A free-text feature whose training words are `vocabulary` and whose lengths were `chars`."""
    return FeatureSpec(
        name=name,
        kind=FeatureKind.TEXT,
        dtype="object",
        nullable=True,
        text=TextStats(
            chars=chars,
            words=spread(1, 20),
            max_chars=1000,
            vocabulary=vocabulary,
            unseen_word_share=unseen_word_share,
            samples=[],
        ),
    )


def unused_feature(name: str) -> FeatureSpec:
    """A column the model never reads, such as an identifier."""
    return FeatureSpec(name=name, kind=FeatureKind.UNUSED, dtype="object", nullable=True, placeholder="c-0")
