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
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelcard.card import FeatureKind, FeatureSpec, ModelCard, read_card
from modelcard.text import unseen_words
from monitoring import logread, logstore
from monitoring.predlog import default_prediction_log
from monitoring.report import DriftResult, table, write_report
from monitoring.stats import FeatureDrift, counted_category_drift, counted_class_mix, new_word_drift, numeric_drift
from monitoring.streamdrift import (
    BinCounts,
    Sample,
    as_category,
    category_counts,
    lengths,
    numbers,
)

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
# One test's result, with the numeric values behind it for the report's histogram (none for shares).
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


def _reference_values(spec: FeatureSpec, card: ModelCard) -> np.ndarray:
    """A numeric feature's training reference values, or a text feature's lengths; blanks as NaN."""
    values = [row.get(spec.name) for row in card.reference]
    if spec.kind is FeatureKind.TEXT:
        return np.array([np.nan if v is None else len(v) for v in values], dtype=float)
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def column(spec: FeatureSpec) -> str:
    """The name a feature's column is read by (monitoring/logread.py)."""
    return f"features.{spec.name}"


class WindowFigures:
    """What the check needs of a window, gathered batch by batch: counts, bins and a bounded sample."""

    def __init__(self, card: ModelCard) -> None:
        self.card = card
        self.checked = [spec for spec in card.features if spec.kind is not FeatureKind.UNUSED]
        self.binned = {
            spec.name: BinCounts(_reference_values(spec, card))
            for spec in self.checked
            if spec.kind in NUMERIC or spec.kind is FeatureKind.TEXT
        }
        self.counts: dict[str, Counter[str]] = {spec.name: Counter() for spec in self.checked}
        self.classes: Counter[str] = Counter()
        self.sample = Sample()
        self.rows = 0

    def add(self, table: pa.Table) -> None:
        """Count one batch of the window's rows and offer them to the sample."""
        self.rows += table.num_rows
        self.classes.update(category_counts(CLASS_SPEC, table.column("class")))
        for spec in self.checked:
            values = table.column(column(spec))
            if spec.kind in NUMERIC:
                self.binned[spec.name].add(numbers(values))
            elif spec.kind is FeatureKind.TEXT:
                self.binned[spec.name].add(lengths(values))
            else:
                self.counts[spec.name].update(category_counts(spec, values))
        self.sample.add(table.select([column(spec) for spec in self.checked if spec.name in self.binned]))

    def numeric(self, spec: FeatureSpec, name: str, live: np.ndarray, psi_threshold: float, alpha: float) -> Checked:
        """A number's (or a text's lengths') test: on every row while the sample holds them all, PSI on all always."""
        reference = _reference_values(spec, self.card)
        drift = numeric_drift(name, reference, live, psi_threshold, alpha)
        if not self.sample.whole:
            drift = self.binned[spec.name].with_all_rows(drift, reference, psi_threshold, alpha)
        return (drift, reference, live)

    def feature(self, spec: FeatureSpec, psi_threshold: float, alpha: float) -> list[Checked]:
        """One feature's tests by its kind (TESTS of them)."""
        if spec.kind in NUMERIC:
            return [self.numeric(spec, spec.name, numbers(self.sample.column(column(spec))), psi_threshold, alpha)]
        if spec.kind is FeatureKind.TEXT:
            assert spec.text is not None
            sampled = self.sample.column(column(spec))
            length = self.numeric(spec, f"{spec.name} (length)", lengths(sampled), psi_threshold, alpha)
            words, unseen = unseen_words(sampled.to_pylist(), frozenset(spec.text.vocabulary))
            new = new_word_drift(f"{spec.name} (new words)", spec.text.unseen_word_share, words, unseen, alpha)
            return [length, (new, None, None)]
        counts = self.counts[spec.name]
        drift = counted_category_drift(spec.name, reference_counts(spec, self.card), counts, psi_threshold, alpha)
        return [(drift, None, None)]


# The predicted class is counted as a category is.
CLASS_SPEC = FeatureSpec.model_construct(name="class", kind=FeatureKind.CATEGORY)


def check_window(
    tables: Iterable[pa.Table], card: ModelCard, model: str, args: argparse.Namespace
) -> tuple[DriftResult, Columns, Columns]:
    """Compare the window's features and predicted classes with the card's training reference, batch by batch."""
    if not card.reference:
        raise CannotCheck(f"model {model} keeps no training reference in its card; train it again")
    figures = WindowFigures(card)
    for batch in tables:
        figures.add(batch)
    drifts, reference, live = [], {}, {}
    # Bonferroni: each test at alpha / tests, so the whole check raises a false alarm at most `alpha` of the
    # time however many tests the model's features need (15 tests at 0.01 each would be ~14 %).
    per_test_alpha = args.alpha / max(count_tests(card.features), 1)
    skipped = [spec.name for spec in card.features if spec.kind is FeatureKind.UNUSED]
    if skipped:
        logger.info("Not checked, the model never reads them: %s", ", ".join(skipped))
    for spec in figures.checked:
        for drift, reference_values, live_values in figures.feature(spec, args.psi_threshold, per_test_alpha):
            drifts.append(drift)
            if reference_values is not None and live_values is not None:
                reference[drift.feature], live[drift.feature] = reference_values, live_values
    result = DriftResult(
        model=model,
        window_start=args.start.isoformat(timespec="seconds"),
        window_end=args.end.isoformat(timespec="seconds"),
        live_rows=figures.rows,
        reference_rows=len(card.reference),
        features=drifts,
        classes=counted_class_mix(
            [row["label"] for row in card.reference], figures.classes, card.class_names, args.psi_threshold
        ),
        psi_threshold=args.psi_threshold,
        alpha=args.alpha,
        skipped=skipped,
    )
    return result, reference, live


def check(
    records: list[dict[str, Any]], card: ModelCard, model: str, args: argparse.Namespace
) -> tuple[DriftResult, Columns, Columns]:
    """check_window over records ({"features": {name: value}, "class": name}) held in memory."""
    specs = [spec for spec in card.features if spec.kind is not FeatureKind.UNUSED]
    arrays = [pa.array([r["class"] for r in records], pa.string())]
    arrays += [pa.array([r["features"].get(s.name) for r in records], logstore.arrow_type(s)) for s in specs]
    table = pa.table(arrays, names=["class", *(column(spec) for spec in specs)])
    return check_window([table], card, model, args)


def _kept(table: pa.Table, sources: Sequence[str] | None, model: str | None = None) -> pa.Table:
    """The rows of these sources (all when None), and of this model (any when None)."""
    keep = None
    if sources:
        keep = pc.is_in(pc.cast(table.column("source"), pa.string()), value_set=pa.array(list(sources)))
    if model is not None and table.column("model").unique().to_pylist() != [model]:  # one model: nothing to copy
        same = pc.equal(pc.cast(table.column("model"), pa.string()), model)
        keep = same if keep is None else pc.and_(keep, same)
    return table if keep is None else table.filter(keep)


def run(args: argparse.Namespace) -> int:
    """Read the window's columns batch by batch, check them, print and write the report; return the exit status."""
    by_model, newest = logread.models_in_window(args.log_dir, args.start, args.end, args.source)
    if newest is None:
        raise CannotCheck(f"no predictions logged in {args.log_dir} from {args.start} to {args.end}")
    model = args.model or newest
    if len(by_model) > 1:
        logger.warning("The window holds predictions of %s; checking %s only", dict(by_model), model)
    if by_model[model] < args.min_rows:
        raise CannotCheck(f"only {by_model[model]} rows of {model} in the window; at least {args.min_rows} are needed")
    card = load_card(model)
    columns = ["model", "source", "class", *(column(s) for s in card.features if s.kind is not FeatureKind.UNUSED)]
    tables = logread.read_window(args.log_dir, columns, args.start, args.end, card.features)
    result, reference, live = check_window((_kept(t, args.source, model) for t in tables), card, model, args)
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
    # The system allocator gives read batches back to the OS sooner than Arrow's mimalloc (10 to 30 MB less at
    # 10 M rows); ARROW_DEFAULT_MEMORY_POOL=system in the job's environment does so from the start
    # (docs/performance.md#the-prediction-log-at-scale).
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        return run(args)
    except CannotCheck as problem:
        logger.error("Drift check cannot run: %s", problem)
        return CANNOT_CHECK


if __name__ == "__main__":
    sys.exit(main())
