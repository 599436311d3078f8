"""Check the served model's live quality: the outcomes reported to POST /feedback, joined with their predictions.

Usage: python -m monitoring.quality [--since 30d | --start ISO [--end ISO]] [--log-dir DIR] [--model TAG]
Exit status: 0 every gate of the card holds, 1 the live figures miss one (so a scheduled job can fail on it),
2 the check could not run (no outcomes, too few, no such model).

The figures are the ones training measured on the test split (runtime/evaluation.py), computed on the
predictions the window holds that have an outcome: over the whole window, which gates, and per day, which
does not. An outcome reported twice counts once, as its latest label, whether by request id or by key.
The report folder gets quality.json and quality.html: the figures per day, the confusion matrix and
calibration (monitoring/quality_report.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from modelcard.card import Metrics, ModelCard
from monitoring.drift import CannotCheck, add_window_arguments, load_card, resolve_window
from monitoring.outcomes import Logged, PredictionIndex, latest_per_prediction, read_outcomes
from monitoring.quality_report import calibration, figure_text, write_quality_page
from runtime.evaluation import METRIC_NAMES, evaluate, missed_gates

logger = logging.getLogger("monitoring.quality")

GATES_HOLD, BELOW_GATE, CANNOT_CHECK = 0, 1, 2


@dataclass(frozen=True)
class Judged:
    """The predictions of one model in the window that have an outcome: their probabilities and true labels."""

    model: str
    card: ModelCard
    logged: list[Logged]
    probabilities: np.ndarray  # rows x the card's classes
    truth: list[str]


def judged(args: argparse.Namespace) -> Judged:
    """Join the outcomes with their logged predictions and keep the window's, of one model."""
    reported, pairs = matched(args.log_dir, args.start, args.end, args.source)
    if not reported:
        raise CannotCheck(f"no outcomes reported in {args.log_dir} since {args.start} (POST /feedback)")
    if not pairs:
        raise CannotCheck(f"none of the {reported} outcomes belongs to a prediction logged in the window")
    model = args.model or max(pairs, key=lambda pair: pair[0].time)[0].model
    by_model = Counter(logged.model for logged, _ in pairs)
    if len(by_model) > 1:
        logger.warning("The window's outcomes are for %s; checking %s only", dict(by_model), model)
    card = load_card(model)
    rows = scored([(logged, label) for logged, label in pairs if logged.model == model], card, model)
    if len(rows.truth) < args.min_outcomes:
        raise CannotCheck(
            f"only {len(rows.truth)} outcomes for {model} in the window; at least {args.min_outcomes} are needed"
        )
    return rows


def matched(
    log_dir: Path,
    start: datetime,
    end: datetime,
    sources: Sequence[str] | None = None,
    index: PredictionIndex | None = None,
) -> tuple[int, list[tuple[Logged, str]]]:
    """How many outcomes arrived since `start`, and the window's predictions with their latest outcome's label."""
    outcomes = read_outcomes(log_dir, since=start)  # an outcome is reported after its prediction
    if not outcomes:
        return 0, []  # nothing to join: the log need not be indexed
    index = index or PredictionIndex(log_dir)
    by_id = [o for o in outcomes if o.request_id is not None]
    by_key = [o for o in outcomes if o.request_id is None]  # keyed outcomes that matched nothing when reported
    found = index.find([(o.request_id, o.row) for o in by_id if o.request_id is not None]) + index.find_keys(by_key)
    latest = latest_per_prediction(
        [(outcome, logged) for outcome, logged in zip(by_id + by_key, found, strict=True) if logged is not None]
    )
    pairs = [
        (logged, outcome.label)
        for outcome, logged in latest
        if start <= logged.time < end and (not sources or logged.source in sources)
    ]
    return len(outcomes), pairs


def scored(pairs: Sequence[tuple[Logged, str]], card: ModelCard, model: str) -> Judged:
    """The pairs' probabilities in the card's class order beside their labels (a line without them left out)."""
    rows = [(logged, label, probabilities_of(logged, card.class_names)) for logged, label in pairs]
    unusable = [logged for logged, _, p in rows if p is None]
    if unusable:
        logger.warning("%d predictions were logged without every class's probability: left out", len(unusable))
    kept = [(logged, label, p) for logged, label, p in rows if p is not None]
    probabilities = np.array([p for _, _, p in kept], dtype=float).reshape(len(kept), len(card.class_names))
    # As served: ONNX answers float32, whose rows sum to 1 only within float32's precision; log loss wants 1.
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return Judged(model, card, [logged for logged, _, _ in kept], probabilities, [label for _, label, _ in kept])


class LiveFigures:
    """One served model's live figures over the last `window`, for the web UI: joined again at most every `ttl_s`.

    While no outcome is reported a call costs a look for outcome files, and the log is not indexed. The index
    of the log is kept between calls and reads on from where it stopped, so a later call costs the outcomes'
    read and the new log lines, not the whole log again.
    """

    def __init__(
        self, log_dir: Path, model: str, card: ModelCard, window: timedelta = timedelta(days=30), ttl_s: float = 60
    ) -> None:
        self.log_dir, self.model, self.card, self.window, self.ttl_s = log_dir, model, card, window, ttl_s
        self._index = PredictionIndex(log_dir)
        self._lock = threading.Lock()
        self._cached: tuple[float, Metrics] | None = None

    def __call__(self) -> Metrics | None:
        """The figures of the window's predictions of this model that have an outcome; None when none has."""
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached[0] < self.ttl_s:
                return self._cached[1]
            end = datetime.now(UTC)
            _, pairs = matched(self.log_dir, end - self.window, end, index=self._index)
            rows = scored([(logged, label) for logged, label in pairs if logged.model == self.model], self.card, "")
            if not rows.truth:
                return None  # not kept: the first outcome shows on the next page load
            figures = evaluate(rows.probabilities, rows.truth, self.card.class_names)
            self._cached = (time.monotonic(), figures)
            return figures


def probabilities_of(logged: Logged, class_names: list[str]) -> list[float] | None:
    """Every class's probability for a logged row, in the card's order; an older binary line's from its winner's."""
    if logged.probabilities is not None:
        return [logged.probabilities[name] for name in class_names]
    if len(class_names) == 2 and logged.class_name in class_names:
        winner = class_names.index(logged.class_name)
        pair = [1.0 - logged.probability] * 2
        pair[winner] = logged.probability
        return pair
    return None


def evaluated(judged_rows: Judged) -> tuple[Metrics, dict[date, Metrics]]:
    """The figures over the window, and per day of the predictions."""
    card = judged_rows.card
    overall = evaluate(judged_rows.probabilities, judged_rows.truth, card.class_names)
    days: dict[date, list[int]] = defaultdict(list)
    for position, logged in enumerate(judged_rows.logged):
        days[logged.time.astimezone(UTC).date()].append(position)
    truth = np.asarray(judged_rows.truth)
    per_day = {
        day: evaluate(judged_rows.probabilities[rows], truth[rows], card.class_names)
        for day, rows in sorted(days.items())
    }
    return overall, per_day


def table(model: str, card: ModelCard, live: Metrics, per_day: dict[date, Metrics], missed: list[str]) -> str:
    """The report people read: each metric live beside the test figure and its gate, then one line per day."""
    lines = [
        f"Live quality of {model}: {live.n_test} predictions with an outcome\n",
        "| metric | test (card) | live | change | gate | verdict |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name in METRIC_NAMES:
        test, now, gate = card.metrics.value(name), live.value(name), card.gates.get(name)
        change = f"{now - test:+.4f}" if test is not None and now is not None else "–"
        verdict = "" if gate is None else ("MISSED" if name in missed else "holds")
        gate_text = "–" if gate is None else f"{'≤' if name == 'log_loss' else '≥'} {gate:g}"
        lines.append(f"| {name} | {figure_text(test)} | {figure_text(now)} | {change} | {gate_text} | {verdict} |")
    lines += ["", "| day (UTC) | outcomes | accuracy | balanced accuracy | ROC AUC |", "|---|---:|---:|---:|---:|"]
    for day, metrics in per_day.items():
        lines.append(
            f"| {day} | {metrics.n_test} | {figure_text(metrics.accuracy)} | {figure_text(metrics.balanced_accuracy)} "
            f"| {figure_text(metrics.roc_auc)} |"
        )
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Join, measure, print, write quality.json and quality.html; return the exit status."""
    rows = judged(args)
    card = rows.card
    live, per_day = evaluated(rows)
    missed = missed_gates(live, card.gates)
    sys.stdout.write(table(rows.model, card, live, per_day, missed))
    if args.report is not None:
        args.report.mkdir(parents=True, exist_ok=True)
        matrix = live.confusion_matrix  # actual (rows) by predicted (columns), the card's class order
        calibrated = calibration(rows.probabilities, rows.truth, card.class_names)
        report = {
            "model": rows.model,
            "window": {"start": args.start.isoformat(), "end": args.end.isoformat()},
            "gates": card.gates,
            "missed": missed,
            "test": card.metrics.model_dump(mode="json"),
            "live": live.model_dump(mode="json"),
            "per_day": {str(day): metrics.model_dump(mode="json") for day, metrics in per_day.items()},
            "confusion_matrix": {"classes": card.class_names, "rows_actual_columns_predicted": matrix},
            "calibration": asdict(calibrated),
        }
        (args.report / "quality.json").write_text(json.dumps(report, indent=2))
        page = write_quality_page(args.report, rows.model, card, live, per_day, missed, matrix, calibrated)
        sys.stdout.write(f"Report: {page} ({args.report / 'quality.json'})\n")
    return BELOW_GATE if missed else GATES_HOLD


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; the window is resolved to absolute UTC times."""
    parser = argparse.ArgumentParser(prog="python -m monitoring.quality", description=__doc__.split("\n")[0])
    add_window_arguments(parser, "30d", "the latest prediction's with an outcome", "quality-report")
    parser.add_argument("--min-outcomes", type=int, default=100, help="fewest outcomes worth checking (100)")
    return resolve_window(parser.parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    """Entry point: the exit status says a gate missed (1), all held (0) or cannot check (2)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        return run(args)
    except CannotCheck as problem:
        logger.error("Quality check cannot run: %s", problem)
        return CANNOT_CHECK


if __name__ == "__main__":
    sys.exit(main())
