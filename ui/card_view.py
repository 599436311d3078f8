"""The model card as tables and text for the UI."""

from __future__ import annotations

import pandas as pd

from modelcard.card import FeatureKind, FeatureSpec, ModelCard

METRIC_LABELS = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "f1_macro": "macro F1",
    "log_loss": "log loss",
    "roc_auc": "ROC AUC",
}


def metrics_table(card: ModelCard) -> pd.DataFrame:
    """The headline test metrics, with the gate each had to clear."""
    rows = []
    for name, label in METRIC_LABELS.items():
        value = card.metrics.value(name)
        if name == "roc_auc" and card.metrics.positive_class:
            label = f"{label} (of {card.metrics.positive_class})"
        gate = card.gates.get(name)
        bar = "" if gate is None else (f"≤ {gate:g}" if name == "log_loss" else f"≥ {gate:g}")
        rows.append({"metric": label, "value": None if value is None else round(value, 4), "gate": bar})
    return pd.DataFrame(rows)


def per_class_table(card: ModelCard) -> pd.DataFrame:
    """Precision, recall, F1 and support for each class."""
    return pd.DataFrame(
        [
            {"class": name, "precision": m.precision, "recall": m.recall, "f1": m.f1, "support": m.support}
            for name, m in card.metrics.per_class.items()
        ]
    ).round(3)


def confusion_table(card: ModelCard) -> pd.DataFrame:
    """The test-set confusion matrix with class names on both axes."""
    rows = [
        {"true \\ predicted": name, **dict(zip(card.class_names, counts, strict=True))}
        for name, counts in zip(card.class_names, card.metrics.confusion_matrix, strict=True)
    ]
    return pd.DataFrame(rows)


def feature_table(card: ModelCard) -> pd.DataFrame:
    """Each feature: its kind, what training saw, what the service accepts, and blanks."""
    return pd.DataFrame(
        [
            {
                "feature": spec.label,
                "kind": spec.kind.value,
                "in training": _seen(spec),
                "accepted": _accepted(spec),
                "blanks in training": spec.missing,
                "description": spec.description,
            }
            for spec in card.features
        ]
    )


def _seen(spec: FeatureSpec) -> str:
    if spec.stats is not None:
        s = spec.stats
        return f"{s.min:g} to {s.max:g}, mean {s.mean:.4g}, sd {s.std:.3g}"
    if spec.kind is FeatureKind.BOOLEAN:
        return f"true in {spec.true_count} rows"
    counts = spec.categories or {}
    shown = ", ".join(f"{value} ({count})" for value, count in list(counts.items())[:8])
    return shown + (f", … {len(counts) - 8} more" if len(counts) > 8 else "")


def _accepted(spec: FeatureSpec) -> str:
    blank = "; or blank" if spec.nullable else ""
    if spec.kind is FeatureKind.CATEGORY:
        return f"one of the {len(spec.categories or {})} values seen{blank}"
    if spec.kind is FeatureKind.BOOLEAN:
        return f"true or false{blank}"
    whole = "whole numbers " if spec.kind is FeatureKind.INTEGER else ""
    return f"{whole}{spec.lower:g} to {spec.upper:g}{blank}"
