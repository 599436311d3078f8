"""Check the logged live inputs for drift from the model's training data.

Usage: python -m monitoring.drift [--since 24h | --start ISO [--end ISO]] [--log-dir DIR] [--report DIR]
Exit status: 0 no drift, 1 drift found (so a scheduled job can fail on it), 2 the check could not run.

Each feature is tested by its kind: numbers, categories and booleans once, free text twice (its lengths, and
its share of new words), and unused features (the model never reads them) not at all.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from modelcard.card import FeatureKind, FeatureSpec, ModelCard, read_card
from modelcard.text import unseen_words
from monitoring.predlog import default_prediction_log, read_records
from monitoring.report import DriftResult, table, write_report
from monitoring.stats import BLANK, FeatureDrift, category_drift, class_mix_drift, new_word_drift, numeric_drift

logger = logging.getLogger("monitoring.drift")

NO_DRIFT, DRIFT, CANNOT_CHECK = 0, 1, 2
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class CannotCheck(Exception):
    """The check cannot run: no logs, too few rows, or no such model."""


def duration(text: str) -> timedelta:
    """'90s', '15m', '24h' or '7d' as a timedelta."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 15m, 24h or 7d")
    return timedelta(**{_UNITS[match[2]]: float(match[1])})


def timestamp(text: str) -> datetime:
    """An ISO 8601 time; without a zone it is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time like 2026-11-23T08:00") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def load_card(tag: str) -> ModelCard:
    """The model card of a model in the BentoML store."""
    import bentoml

    try:
        return read_card(Path(bentoml.models.get(tag).path))
    except bentoml.exceptions.NotFound:
        raise CannotCheck(f"model {tag} is not in the BentoML store (BENTOML_HOME); pass --model") from None
    except ValueError as error:
        raise CannotCheck(f"model {tag} cannot be read: {error}") from None


Columns = dict[str, np.ndarray]
# One test's result, with the numeric values behind it for the report's histogram (None for shares).
Checked = tuple[FeatureDrift, np.ndarray | None, np.ndarray | None]
NUMERIC = (FeatureKind.NUMBER, FeatureKind.INTEGER)
# Tests per feature by kind (one otherwise): the Bonferroni divisor is their sum over the model's features.
TESTS = {FeatureKind.TEXT: 2, FeatureKind.UNUSED: 0}


def count_tests(features: list[FeatureSpec]) -> int:
    """How many tests the check makes of these features."""
    return sum(TESTS.get(spec.kind, 1) for spec in features)


def reference_counts(spec: FeatureSpec, card: ModelCard) -> dict[str, int]:
    """Counts of a category or boolean feature's values in the card's training reference, blanks as a value.

    The same rows the numeric features are compared with, so both kinds test against one sample; every value
    seen in training is listed, even one the sample happens to miss.
    """
    counts = dict.fromkeys(["true", "false"] if spec.kind is FeatureKind.BOOLEAN else list(spec.categories or {}), 0)
    for row in card.reference:
        value = as_category(spec, row.get(spec.name))
        counts[value] = counts.get(value, 0) + 1
    return counts


def as_category(spec: FeatureSpec, value: Any) -> str:
    """A logged value as the category it counts under."""
    if value is None:
        return BLANK
    if spec.kind is FeatureKind.BOOLEAN:
        return "true" if value else "false"
    return str(value)


def _numbers(values: list[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _lengths(values: list[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else len(v) for v in values], dtype=float)


def text_drift(
    spec: FeatureSpec, card: ModelCard, live: list[Any], psi_threshold: float, alpha: float
) -> list[Checked]:
    """A text feature's two tests: its lengths against the reference rows', its new words against the card's."""
    assert spec.text is not None
    reference_lengths = _lengths([row.get(spec.name) for row in card.reference])
    live_lengths = _lengths(live)
    lengths = numeric_drift(f"{spec.name} (length)", reference_lengths, live_lengths, psi_threshold, alpha)
    words, unseen = unseen_words(live, frozenset(spec.text.vocabulary))
    new_words = new_word_drift(f"{spec.name} (new words)", spec.text.unseen_word_share, words, unseen, alpha)
    return [(lengths, reference_lengths, live_lengths), (new_words, None, None)]


def feature_drift(
    spec: FeatureSpec, card: ModelCard, live: list[Any], psi_threshold: float, alpha: float
) -> list[Checked]:
    """One feature's tests by its kind (TESTS of them: none for an unused feature)."""
    if spec.kind is FeatureKind.UNUSED:
        return []
    if spec.kind is FeatureKind.TEXT:
        return text_drift(spec, card, live, psi_threshold, alpha)
    if spec.kind in NUMERIC:
        reference_values = _numbers([row.get(spec.name) for row in card.reference])
        live_values = _numbers(live)
        drift = numeric_drift(spec.name, reference_values, live_values, psi_threshold, alpha)
        return [(drift, reference_values, live_values)]
    categories = [as_category(spec, value) for value in live]
    return [(category_drift(spec.name, reference_counts(spec, card), categories, psi_threshold, alpha), None, None)]


def check(
    records: list[dict[str, Any]], card: ModelCard, model: str, args: argparse.Namespace
) -> tuple[DriftResult, Columns, Columns]:
    """Compare the records' features and predicted classes with the card's training reference."""
    if not card.reference:
        raise CannotCheck(f"model {model} keeps no training reference in its card; train it again")
    drifts, reference, live = [], {}, {}
    # Bonferroni: each test at alpha / tests, so the whole check raises a false alarm at most `alpha` of the
    # time however many tests the model's features need (15 tests at 0.01 each would be ~14 %).
    per_test_alpha = args.alpha / max(count_tests(card.features), 1)
    skipped = [spec.name for spec in card.features if spec.kind is FeatureKind.UNUSED]
    if skipped:
        logger.info("Not checked, the model never reads them: %s", ", ".join(skipped))
    for spec in card.features:
        values = [r["features"].get(spec.name) for r in records]
        for drift, reference_values, live_values in feature_drift(
            spec, card, values, args.psi_threshold, per_test_alpha
        ):
            drifts.append(drift)
            if reference_values is not None and live_values is not None:
                reference[drift.feature], live[drift.feature] = reference_values, live_values
    result = DriftResult(
        model=model,
        window_start=args.start.isoformat(timespec="seconds"),
        window_end=args.end.isoformat(timespec="seconds"),
        live_rows=len(records),
        reference_rows=len(card.reference),
        features=drifts,
        classes=class_mix_drift(
            [row["label"] for row in card.reference],
            [r["class"] for r in records],
            card.class_names,
            args.psi_threshold,
        ),
        psi_threshold=args.psi_threshold,
        alpha=args.alpha,
        skipped=skipped,
    )
    return result, reference, live


def run(args: argparse.Namespace) -> int:
    """Read the window's records, check them, print and write the report; return the exit status."""
    records = read_records(args.log_dir, args.start, args.end)
    if args.source:
        records = [r for r in records if r.get("source") in args.source]
    if not records:
        raise CannotCheck(f"no predictions logged in {args.log_dir} from {args.start} to {args.end}")
    model = args.model or records[-1]["model"]
    by_model = Counter(r["model"] for r in records)
    if len(by_model) > 1:
        logger.warning("The window holds predictions of %s; checking %s only", dict(by_model), model)
    records = [r for r in records if r["model"] == model]
    if len(records) < args.min_rows:
        raise CannotCheck(f"only {len(records)} rows of {model} in the window; at least {args.min_rows} are needed")
    result, reference, live = check(records, load_card(model), model, args)
    sys.stdout.write(table(result))
    if args.report is not None:
        page = write_report(result, reference, live, args.report)
        sys.stdout.write(f"Report: {page}\n")
    return DRIFT if result.drifted else NO_DRIFT


def add_window_arguments(parser: argparse.ArgumentParser, since: str, model: str, report: str) -> None:
    """The options every check of the log takes: its folder, the window, the model, the sources, the report."""
    parser.add_argument(
        "--log-dir", type=Path, default=default_prediction_log(os.environ), help="prediction-log folder"
    )
    parser.add_argument("--since", type=duration, default=duration(since), help=f"window length (default {since})")
    parser.add_argument("--start", type=timestamp, help="window start (ISO 8601; overrides --since)")
    parser.add_argument("--end", type=timestamp, help="window end (ISO 8601; default now)")
    parser.add_argument("--model", help=f"model tag to check (default: {model})")
    parser.add_argument("--source", nargs="+", choices=["api", "batch", "ui"], help="only these sources")
    parser.add_argument("--report", type=Path, default=Path(report), help="report folder ('' for none)")


def resolve_window(args: argparse.Namespace) -> argparse.Namespace:
    """The window as absolute UTC times, and no report for `--report ''`."""
    args.end = args.end or datetime.now(UTC)
    args.start = args.start or args.end - args.since
    if args.report == Path(""):
        args.report = None
    return args


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; the window is resolved to absolute UTC times."""
    parser = argparse.ArgumentParser(prog="python -m monitoring.drift", description=__doc__.split("\n")[0])
    add_window_arguments(parser, "24h", "the one in the latest record", "drift-report")
    parser.add_argument("--psi-threshold", type=float, default=0.2, help="PSI at which a feature drifts (0.2)")
    parser.add_argument(
        "--alpha",
        type=float,
        default=0.01,
        help="false-alarm rate of the whole check (0.01); each test uses alpha / tests (two per text feature)",
    )
    parser.add_argument("--min-rows", type=int, default=100, help="fewest live rows worth checking (100)")
    return resolve_window(parser.parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    """Entry point: the exit status says drift (1), none (0) or cannot check (2)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        return run(args)
    except CannotCheck as problem:
        logger.error("Drift check cannot run: %s", problem)
        return CANNOT_CHECK


if __name__ == "__main__":
    sys.exit(main())
