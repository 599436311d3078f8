"""The live-quality report: metrics over time, the confusion matrix and calibration, as one HTML page.

The figures come from the quality check's join (monitoring/quality.py); calibration compares the predicted
probability with the rate at which that class really happened, in ten equal-width bins of probability:
a binary model's positive class (the card's second), or for more classes the predicted class's probability
against how often the prediction was right (a reliability diagram).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from modelcard.card import Metrics, ModelCard
from monitoring.report import inline_png, pyplot, save_png
from runtime.evaluation import METRIC_NAMES

CALIBRATION_BINS = 10
PLOTTED_METRICS = ("accuracy", "balanced_accuracy", "roc_auc")


@dataclass(frozen=True)
class Calibration:
    """Predicted probability against the observed rate, per bin that holds predictions."""

    about: str  # what the probability is of: "P(yes)" or "the predicted class"
    predicted: list[float]  # the bins' mean predicted probability
    observed: list[float]  # the rate at which it happened in the bin
    counts: list[int]


def calibration(probabilities: np.ndarray, truth: list[str], class_names: list[str]) -> Calibration:
    """Ten equal-width bins of predicted probability and how often what was predicted happened in each."""
    if len(class_names) == 2:
        about, scores = f"P({class_names[1]})", probabilities[:, 1]
        happened = np.asarray(truth) == class_names[1]
    else:
        about, scores = "the predicted class", probabilities.max(axis=1)
        happened = np.asarray(class_names)[probabilities.argmax(axis=1)] == np.asarray(truth)
    bins = np.minimum((scores * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    predicted, observed, counts = [], [], []
    for index in range(CALIBRATION_BINS):
        inside = bins == index
        if inside.any():
            predicted.append(float(scores[inside].mean()))
            observed.append(float(happened[inside].mean()))
            counts.append(int(inside.sum()))
    return Calibration(about, predicted, observed, counts)


def write_quality_page(
    directory: Path,
    model: str,
    card: ModelCard,
    live: Metrics,
    per_day: dict[date, Metrics],
    missed: list[str],
    matrix: list[list[int]],
    calibrated: Calibration,
) -> Path:
    """Write quality.html and its three pictures into `directory`; return the page's path."""
    pictures = [
        _over_time(per_day, card, directory / "quality-over-time.png"),
        _matrix_plot(matrix, card.class_names, directory / "confusion-matrix.png"),
        _calibration_plot(calibrated, directory / "calibration.png"),
    ]
    page = directory / "quality.html"
    page.write_text(_html(model, card, live, missed, matrix, pictures))
    return page


def _over_time(per_day: dict[date, Metrics], card: ModelCard, path: Path) -> Path:
    """Each day's accuracy, balanced accuracy and ROC AUC, with the test figures as dashed lines."""
    figure, axes = pyplot().subplots(figsize=(7, 3.4))
    days = list(per_day)
    stamps = np.array(days, dtype="datetime64[D]")
    for index, name in enumerate(PLOTTED_METRICS):
        values = [per_day[day].value(name) for day in days]
        colour = f"C{index}"
        axes.plot(stamps, [np.nan if v is None else v for v in values], marker="o", color=colour, label=name)
        test = card.metrics.value(name)
        if test is not None:
            axes.axhline(test, color=colour, linestyle="--", linewidth=1)
    axes.set_ylabel("live (line) and test (dashed)")
    axes.set_title("Quality per day of prediction (UTC)", fontsize=10)
    axes.legend(fontsize=8)
    figure.autofmt_xdate()
    return save_png(figure, path)


def _matrix_plot(matrix: list[list[int]], class_names: list[str], path: Path) -> Path:
    """The confusion matrix as a heat map, counts written in the cells."""
    counts = np.asarray(matrix)
    size = max(3.2, 0.7 * len(class_names) + 2)
    figure, axes = pyplot().subplots(figsize=(size, size * 0.85))
    axes.imshow(counts, cmap="Blues")
    ticks = np.arange(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=30 if len(class_names) > 4 else 0)
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    middle = counts.max() / 2 if counts.size else 0
    for (row, column), count in np.ndenumerate(counts):
        axes.text(column, row, str(count), ha="center", va="center", color="white" if count > middle else "black")
    axes.set_title("Confusion matrix (live)", fontsize=10)
    return save_png(figure, path)


def _calibration_plot(calibrated: Calibration, path: Path) -> Path:
    """Predicted probability against the observed rate; the diagonal is a perfectly calibrated model."""
    figure, axes = pyplot().subplots(figsize=(4.2, 4))
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    axes.plot(calibrated.predicted, calibrated.observed, marker="o", label="live")
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel=f"predicted {calibrated.about}", ylabel="observed rate")
    axes.set_title("Calibration (live)", fontsize=10)
    axes.legend(fontsize=8)
    return save_png(figure, path)


def _html(
    model: str, card: ModelCard, live: Metrics, missed: list[str], matrix: list[list[int]], pictures: list[Path]
) -> str:
    """A self-contained page: the figures beside the test's, the matrix as a table, the pictures inlined."""
    rows = []
    for name in METRIC_NAMES:
        test, now, gate = card.metrics.value(name), live.value(name), card.gates.get(name)
        verdict = "" if gate is None else ("MISSED" if name in missed else "holds")
        rows.append(
            f"<tr class={'missed' if name in missed else 'ok'}><td>{name}</td><td>{figure_text(test)}</td>"
            f"<td>{figure_text(now)}</td><td>{'–' if gate is None else f'{gate:g}'}</td><td>{verdict}</td></tr>"
        )
    header = "".join(f"<th>{html.escape(name)}</th>" for name in card.class_names)
    cells = "".join(
        f"<tr><th>{html.escape(actual)}</th>{''.join(f'<td>{count}</td>' for count in counts)}</tr>"
        for actual, counts in zip(card.class_names, matrix, strict=True)
    )
    verdict = f"A gate missed: {', '.join(missed)}" if missed else "Every gate holds"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Live quality · {html.escape(model)}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:.3em .8em;text-align:right}}
tr.missed td{{background:#fde2e1}} img{{margin:.5em}}</style></head><body>
<h1>{html.escape(verdict)}</h1>
<p>Model <code>{html.escape(model)}</code>: {live.n_test} predictions with a reported outcome, measured as
training measured the test split.</p>
<table><tr><th>metric</th><th>test (card)</th><th>live</th><th>gate</th><th>verdict</th></tr>{"".join(rows)}</table>
<h2>Confusion matrix</h2>
<table><tr><th>actual \\ predicted</th>{header}</tr>{cells}</table>
{"".join(inline_png(path) for path in pictures)}
</body></html>
"""


def figure_text(value: float | None) -> str:
    """A metric as the reports show it: four decimals, a dash when it is undefined."""
    return "–" if value is None else f"{value:.4f}"
