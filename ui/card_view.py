"""The model card as tables and text for the UI."""

from __future__ import annotations

import pandas as pd

from modelcard.card import FeatureKind, FeatureSpec, Metrics, ModelCard
from ui.form import UNUSED_NOTE

# A text feature's sample is shown cut to this many characters.
SAMPLE_CHARS = 60

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
        gate = _gate_text(name, card.gates.get(name))
        rows.append({"metric": label, "value": None if value is None else round(value, 4), "gate": gate})
    return pd.DataFrame(rows)


def _gate_text(name: str, gate: float | None) -> str:
    """A gate as a bound: at most for log loss, at least for the others; empty without one."""
    return "" if gate is None else (f"≤ {gate:g}" if name == "log_loss" else f"≥ {gate:g}")


def live_table(card: ModelCard, live: Metrics) -> pd.DataFrame:
    """Each headline metric on the predictions with a reported outcome, beside the test figure and its gate."""
    rows = []
    for name, label in METRIC_LABELS.items():
        test, now, gate = card.metrics.value(name), live.value(name), card.gates.get(name)
        rows.append(
            {
                "metric": label,
                "test": None if test is None else round(test, 4),
                "live": None if now is None else round(now, 4),
                "gate": _gate_text(name, gate),
            }
        )
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
    """What training saw of a feature, by its kind."""
    if spec.kind is FeatureKind.UNUSED:
        return UNUSED_NOTE  # its values say nothing about the model
    if spec.kind is FeatureKind.TEXT:
        return _seen_text(spec)
    if spec.stats is not None:
        s = spec.stats
        return f"{s.min:g} to {s.max:g}, mean {s.mean:.4g}, sd {s.std:.3g}"
    if spec.kind is FeatureKind.BOOLEAN:
        return f"true in {spec.true_count} rows"
    counts = spec.categories or {}
    shown = ", ".join(f"{value} ({count})" for value, count in list(counts.items())[:8])
    return shown + (f", … {len(counts) - 8} more" if len(counts) > 8 else "")


def _seen_text(spec: FeatureSpec) -> str:
    """Free text: its typical length in characters and words, and one short sample."""
    assert spec.text is not None
    chars, words = spec.text.chars, spec.text.words
    line = (
        f"free text, median {_median(chars.quantiles):,.0f} characters ({chars.min:,.0f} to {chars.max:,.0f}), "
        f"{_median(words.quantiles):,.0f} words"
    )
    if spec.text.samples:
        line += f"; e.g. “{_shorten(spec.text.samples[0])}”"
    return line


def _median(quantiles: list[float]) -> float:
    """The middle of the 0, 10, ..., 100th percentiles."""
    return quantiles[len(quantiles) // 2]


def _shorten(text: str) -> str:
    """A sample on one line, cut at SAMPLE_CHARS characters: a table cell, not the training data."""
    line = " ".join(text.split())
    return line if len(line) <= SAMPLE_CHARS else line[: SAMPLE_CHARS - 1] + "…"


def _accepted(spec: FeatureSpec) -> str:
    """What the API takes for a feature, by its kind."""
    blank = "; or blank" if spec.nullable else ""
    if spec.kind is FeatureKind.UNUSED:
        return "any value, or none (never required)"
    if spec.kind is FeatureKind.TEXT:
        assert spec.text is not None
        return f"any text up to {spec.text.max_chars:,} characters, empty included{blank}"
    if spec.kind is FeatureKind.CATEGORY:
        return f"one of the {len(spec.categories or {})} values seen{blank}"
    if spec.kind is FeatureKind.BOOLEAN:
        return f"true or false{blank}"
    whole = "whole numbers " if spec.kind is FeatureKind.INTEGER else ""
    return f"{whole}{spec.lower:g} to {spec.upper:g}{blank}"
