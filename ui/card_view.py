"""The model card as tables and text for the UI."""

from __future__ import annotations

import pandas as pd

from serving.card import ModelCard


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
    """Training statistics and the accepted input range of every feature."""
    return pd.DataFrame(
        [
            {
                "feature": name,
                "min": s.min,
                "max": s.max,
                "mean": s.mean,
                "std": s.std,
                "accepted": f"> {card.feature_limits[name].gt:g} and ≤ {card.feature_limits[name].le:g}",
            }
            for name, s in card.feature_stats.items()
        ]
    ).round(3)


def most_telling_pair(card: ModelCard) -> tuple[str, str]:
    """The two features whose class means differ most relative to the spread within classes."""
    if not card.reference:
        return card.feature_names[0], card.feature_names[min(1, len(card.feature_names) - 1)]
    frame = pd.DataFrame(card.reference)
    grouped = frame.groupby("label")[card.feature_names]
    # A feature constant within each class but not across them separates perfectly: keep it on top.
    separation = grouped.mean().var() / grouped.var().mean().clip(lower=1e-12)
    first, second = separation.fillna(0).sort_values(ascending=False).index[:2]
    return str(first), str(second)
