"""Prometheus metrics about the model's predictions, served on /metrics beside BentoML's request metrics.

Every feature is watched the way its kind allows, with bounded labels:
- numbers and integers: `classifier_input_value` (sum and count, for means in the feature's own units),
  `classifier_input_decile` (which training decile each value fell in: -1 below the training minimum,
  0 to 9, 10 above the maximum; with no drift each decile holds about a tenth), and
  `classifier_input_outside_training_range_total`;
- categories and booleans: `classifier_input_category_total{feature, value}`, one series per training value
  (the most frequent 30 at most, the rest counted as "(other)");
- free text: its values' length in characters watched like a number against training's lengths
  (`classifier_input_text_length`, `classifier_input_text_length_decile`,
  `classifier_input_text_length_outside_training_range_total`), and its words
  (`classifier_input_text_words_total`) and those not in the card's vocabulary
  (`classifier_input_text_unseen_words_total`): rate(unseen) / rate(words) is the live share of new words,
  comparable to the card's `unseen_word_share`;
- every feature: `classifier_input_missing_total` for blanks, and for categories
  `classifier_input_unseen_category_total`, the requests refused for a value training never saw;
- unused features (columns the model never reads, such as an identifier): nothing.

Single-row requests (one, or the few that one event-loop turn predicted together) do not touch Prometheus
themselves: in BentoML's multiprocess mode every increment writes a memory-mapped file under a lock (~1 µs),
and a churn row makes ~25 of them. They are appended to a list instead, and `flush` counts everything
gathered a column at a time, as for a batch: every half second, and before /metrics answers. `Pending`
gathers other increments (BentoML's request series) the same way.

prometheus_client is imported when the metrics are created, never at module import: BentoML sets
PROMETHEUS_MULTIPROC_DIR in each worker after importing the service, and a client imported earlier
would write to a registry that /metrics never reads.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import Counter as Tally
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelcard.card import FeatureKind, FeatureSpec, ModelCard, NumericStats
from modelcard.text import unseen_words
from runtime.predictor import Prediction
from runtime.table import FeatureTable

PREFIX = "classifier"
SOURCES = ("api", "batch", "ui")
# The winning probability: with two classes it is never below 1/2, and alerts care about the low end.
CONFIDENCE_BUCKETS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
# Decile positions -1 (below the training minimum) to 10 (above its maximum), one bucket each.
DECILE_BUCKETS = tuple(i + 0.5 for i in range(-1, 11))
MAX_CATEGORY_SERIES = 30
OTHER, MISSING = "(other)", "(missing)"
ERROR_KINDS = {
    400: "validation",
    401: "unauthorized",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation",
}


def error_kind(status: int) -> str | None:
    """The error kind a response status counts as, or None for a success."""
    if status >= 500:
        return "internal"
    if status >= 400:
        return ERROR_KINDS.get(status, "client")
    return None


def observe_many(histogram: Any, values: np.ndarray) -> None:
    """Histogram.observe for every value, in one pass: a bucket's counter is bumped once, not once per value.

    Relies on prometheus_client's Histogram keeping one value per bucket (`_buckets`, bounds in
    `_upper_bounds`) plus `_sum`; tests/test_monitoring_metrics.py checks it against observe() one by one.
    """
    if values.size == 0:
        return
    # observe() puts a value in the first bucket whose bound is >= the value: searchsorted "left" does the same.
    positions = np.searchsorted(np.asarray(histogram._upper_bounds), values, side="left")
    for position, count in enumerate(np.bincount(positions, minlength=len(histogram._upper_bounds)).tolist()):
        if count:
            histogram._buckets[position].inc(count)
    histogram._sum.inc(float(values.sum()))


class Pending:
    """Increments of Prometheus values gathered on the request path, applied by `flush` off it.

    The keys are prometheus_client's own value objects (a counter's `_value`, a histogram's `_buckets[i]` and
    `_sum`, a summary's `_count` and `_sum`); tests/test_monitoring_metrics.py checks the result against the
    public observe() and inc().
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._counts: dict[Any, float] = {}
        # Set by the first increment after a flush: the flush thread sleeps until then, so an idle worker sleeps.
        self.due = threading.Event()

    def add(self, value: Any, amount: float = 1.0) -> None:
        """Add to one value; the caller holds `lock`."""
        self._counts[value] = self._counts.get(value, 0.0) + amount
        if not self.due.is_set():  # an attribute read; the Event's own lock only once per flush
            self.due.set()

    def observe(self, histogram: Any, amount: float) -> None:
        """Histogram.observe, deferred: the first bucket whose bound is >= amount, and the sum."""
        self.add(histogram._buckets[bisect.bisect_left(histogram._upper_bounds, amount)])
        self.add(histogram._sum, amount)

    def take(self) -> dict[Any, float]:
        """Everything gathered so far, and nothing due any more; the caller holds `lock`."""
        counts, self._counts = self._counts, {}
        self.due.clear()
        return counts

    def flush(self) -> None:
        """Apply everything gathered so far."""
        with self.lock:
            counts = self.take()
        apply(counts)


def apply(counts: dict[Any, float]) -> None:
    """Add taken increments to their Prometheus values."""
    for value, amount in counts.items():
        value.inc(amount)


class _Families:
    """The metric families shared by every feature's watcher."""

    def __init__(self, options: dict[str, Any]) -> None:
        import prometheus_client as prom

        self.value = prom.Summary(
            f"{PREFIX}_input_value", "Input values of numeric features, in their units", ["feature"], **options
        )
        self.decile = prom.Histogram(
            f"{PREFIX}_input_decile",
            "Training decile of each numeric input: -1 below the training minimum, 0-9, 10 above its maximum",
            ["feature"],
            buckets=DECILE_BUCKETS,
            **options,
        )
        self.outside = prom.Counter(
            f"{PREFIX}_input_outside_training_range",
            "Numeric inputs outside the [min, max] the feature had in the training data",
            ["feature"],
            **options,
        )
        self.category = prom.Counter(
            f"{PREFIX}_input_category",
            "Category and boolean inputs by value (the 30 most frequent training values; others as '(other)')",
            ["feature", "value"],
            **options,
        )
        self.missing = prom.Counter(
            f"{PREFIX}_input_missing", "Blank (null or left out) inputs", ["feature"], **options
        )
        self.unseen = prom.Counter(
            f"{PREFIX}_input_unseen_category",
            "Requests with a category value training never saw: refused, or answered where the deployment accepts them",
            ["feature"],
            **options,
        )
        self.text_length = prom.Summary(
            f"{PREFIX}_input_text_length", "Lengths of text inputs, in characters", ["feature"], **options
        )
        self.text_length_decile = prom.Histogram(
            f"{PREFIX}_input_text_length_decile",
            "Training decile of each text input's length: -1 shorter than any in training, 0-9, 10 longer",
            ["feature"],
            buckets=DECILE_BUCKETS,
            **options,
        )
        self.text_length_outside = prom.Counter(
            f"{PREFIX}_input_text_length_outside_training_range",
            "Text inputs shorter or longer than any the feature had in the training data",
            ["feature"],
            **options,
        )
        self.text_words = prom.Counter(f"{PREFIX}_input_text_words", "Words in text inputs", ["feature"], **options)
        self.text_unseen_words = prom.Counter(
            f"{PREFIX}_input_text_unseen_words",
            "Words in text inputs that are not in the model card's vocabulary (training's words)",
            ["feature"],
            **options,
        )


class Deciles:
    """A feature's training deciles: the position each value falls at, as DECILE_BUCKETS count them."""

    def __init__(self, stats: NumericStats) -> None:
        self.inner = np.asarray(stats.quantiles[1:-1])
        self.low, self.high = stats.min, stats.max

    def positions(self, values: np.ndarray) -> np.ndarray:
        """-1 below the training minimum, 0 to 9 (past as many inner deciles), 10 above the maximum."""
        positions = np.searchsorted(self.inner, values, side="right")
        positions[values < self.low], positions[values > self.high] = -1, 10
        return positions


class _Spread:
    """Values against their training distribution: sum and count, training decile, and outside [min, max]."""

    def __init__(self, stats: NumericStats, value: Any, decile: Any, outside: Any) -> None:
        self.deciles = Deciles(stats)
        self._value, self._decile, self._outside = value, decile, outside

    def observe_many(self, values: np.ndarray) -> None:
        """Values present (no blanks), a whole column at once."""
        if values.size == 0:
            return
        self._value._sum.inc(float(values.sum()))
        self._value._count.inc(int(values.size))
        positions = self.deciles.positions(values)
        observe_many(self._decile, positions.astype(float))
        outside = int(((positions < 0) | (positions > 9)).sum())
        if outside:
            self._outside.inc(outside)


class NumericWatcher:
    """A number or integer feature: its values' sum and count, training decile, range and blanks."""

    def __init__(self, spec: FeatureSpec, families: _Families) -> None:
        assert spec.stats is not None
        self.name = spec.name
        self._spread = _Spread(
            spec.stats,
            families.value.labels(spec.name),
            families.decile.labels(spec.name),
            families.outside.labels(spec.name),
        )
        self._missing = families.missing.labels(spec.name)

    def observe_many(self, column: np.ndarray) -> None:
        """A whole column at once (a batch: applied at once, its cost is per batch, not per row)."""
        blank = np.isnan(column)
        if blank.any():
            self._missing.inc(int(blank.sum()))
        self._spread.observe_many(column[~blank])


class TextWatcher:
    """A free-text feature: its values' lengths against training's, its words, those training never saw, blanks."""

    def __init__(self, spec: FeatureSpec, families: _Families) -> None:
        assert spec.text is not None
        self.name = spec.name
        self._spread = _Spread(
            spec.text.chars,
            families.text_length.labels(spec.name),
            families.text_length_decile.labels(spec.name),
            families.text_length_outside.labels(spec.name),
        )
        # Built once: every word of every value is looked up in it.
        self.vocabulary = frozenset(spec.text.vocabulary)
        self._words = families.text_words.labels(spec.name)
        self._unseen_words = families.text_unseen_words.labels(spec.name)
        self._missing = families.missing.labels(spec.name)

    def observe_many(self, column: np.ndarray) -> None:
        """A whole column at once."""
        values = [value for value in column.tolist() if value is not None]
        if len(values) < len(column):
            self._missing.inc(len(column) - len(values))
        self._spread.observe_many(np.fromiter(map(len, values), dtype=float, count=len(values)))
        words, unseen = unseen_words(values, self.vocabulary)
        if words:
            self._words.inc(words)
        if unseen:
            self._unseen_words.inc(unseen)


class CategoryWatcher:
    """A category or boolean feature: a count per value, bounded; blanks."""

    def __init__(self, spec: FeatureSpec, families: _Families) -> None:
        self.name = spec.name
        if spec.kind is FeatureKind.BOOLEAN:
            values: list[Any] = [1.0, 0.0]
            labels = ["true", "false"]
        else:
            values = list(spec.categories or {})[:MAX_CATEGORY_SERIES]
            labels = values
        self._series = {v: families.category.labels(spec.name, label) for v, label in zip(values, labels, strict=True)}
        self._other = families.category.labels(spec.name, OTHER)
        self._missing = families.missing.labels(spec.name)
        self._boolean = spec.kind is FeatureKind.BOOLEAN

    def observe_many(self, column: np.ndarray) -> None:
        """A whole column at once."""
        for value, count in Tally(column.tolist()).items():
            if value is None or (self._boolean and math.isnan(value)):
                self._missing.inc(count)
            else:
                self._series.get(value, self._other).inc(count)


Watcher = NumericWatcher | TextWatcher | CategoryWatcher


def watcher(spec: FeatureSpec, families: _Families) -> Watcher:
    """The watcher for a feature's kind (not for unused features, which are not watched)."""
    if spec.kind in (FeatureKind.NUMBER, FeatureKind.INTEGER):
        return NumericWatcher(spec, families)
    if spec.kind is FeatureKind.TEXT:
        return TextWatcher(spec, families)
    return CategoryWatcher(spec, families)


class PredictionMetrics:
    """The model's own metrics: what it predicts, how sure it is, what it is fed, and what it refuses."""

    def __init__(self, card: ModelCard, model_tag: str, runtime: str, registry: Any = None) -> None:
        import prometheus_client as prom

        options: dict[str, Any] = {} if registry is None else {"registry": registry}
        families = _Families(options)
        predictions = prom.Counter(
            f"{PREFIX}_predictions",
            "Predictions made, by predicted class and where the request came from (api, batch, ui)",
            ["class", "source"],
            **options,
        )
        confidence = prom.Histogram(
            f"{PREFIX}_prediction_confidence",
            "Probability of the predicted class",
            ["source"],
            buckets=CONFIDENCE_BUCKETS,
            **options,
        )
        self.errors = prom.Counter(
            f"{PREFIX}_prediction_errors",
            "Prediction requests refused or failed, by kind (validation, too_large, ..., internal)",
            ["kind", "endpoint"],
            **options,
        )
        self.log_dropped = prom.Counter(
            f"{PREFIX}_prediction_log_dropped",
            "Prediction-log rows dropped: the writer fell behind, or the folder was full or not writable",
            **options,
        )
        self.outcome_log_dropped = prom.Counter(
            f"{PREFIX}_outcome_log_dropped",
            "Outcome-log rows dropped: the writer fell behind, or the folder was full or not writable",
            **options,
        )
        outcomes = prom.Counter(
            f"{PREFIX}_outcomes",
            "Reported outcomes matched with their logged prediction, by predicted and actual class",
            ["predicted", "actual", "correct"],
            **options,
        )
        self._outcomes_family = outcomes
        self.outcomes_unmatched = prom.Counter(
            f"{PREFIX}_outcomes_unmatched",
            "Reported outcomes whose prediction is not (or not yet) in the prediction log",
            **options,
        )
        info = prom.Gauge(
            f"{PREFIX}_model_info",
            "The model being served (always 1)",
            ["model", "runtime", "accuracy"],
            multiprocess_mode="max",
            **options,
        )
        info.labels(model_tag, runtime, f"{card.metrics.accuracy:.4f}").set(1)
        # model_info's accuracy is a label, text; alert rules compare live accuracy with this number instead.
        test_accuracy = prom.Gauge(
            f"{PREFIX}_model_test_accuracy",
            "The model card's test-set accuracy, to compare the live accuracy of reported outcomes with",
            multiprocess_mode="max",
            **options,
        )
        test_accuracy.set(card.metrics.accuracy)
        self._unseen = families.unseen
        self.pending = Pending()
        # Single-row requests' tables wait here for the next flush, which counts them a column at a time: per
        # request that costs a list append instead of ~25 Prometheus increments (see the module docstring).
        self._deferred: list[tuple[str, FeatureTable, Sequence[Prediction]]] = []
        # Children resolved once: .labels() costs more than the increment itself on the hot path.
        self._predictions = {(c, s): predictions.labels(c, s) for c in card.class_names for s in SOURCES}
        # All k² pairs: `correct` follows from the pair, so it adds no series.
        self._outcomes = {
            (p, a): outcomes.labels(p, a, str(p == a).lower()) for p in card.class_names for a in card.class_names
        }
        self._confidence = {s: confidence.labels(s) for s in SOURCES}
        # Unused features (the model never reads them) have no watcher: nothing is counted for them.
        self._watchers = [watcher(spec, families) for spec in card.features if spec.kind is not FeatureKind.UNUSED]
        # Every series exists from the start, so rate() and absent() work before the first request.
        for endpoint in ("/prediction", "/predict_batch"):
            for kind in (*sorted(set(ERROR_KINDS.values())), "client", "internal"):
                self.errors.labels(kind, endpoint)
        for spec in card.features:
            if spec.kind is FeatureKind.CATEGORY:
                self._unseen.labels(spec.name)

    def observe(self, source: str, table: FeatureTable, predictions: Sequence[Prediction]) -> None:
        """Count a request's predictions and record its inputs: a single one at the next flush, a batch now."""
        if len(predictions) == 1:
            self.observe_later(source, table, predictions)
            return
        self._observe_rows(
            source, table.columns, [p.class_name for p in predictions], [p.probability for p in predictions]
        )

    def observe_later(self, source: str, table: FeatureTable, predictions: Sequence[Prediction]) -> None:
        """Count these predictions at the next flush (single-row requests, alone or predicted together)."""
        with self.pending.lock:
            self._deferred.append((source, table, predictions))
            if not self.pending.due.is_set():
                self.pending.due.set()

    def _observe_rows(
        self, source: str, columns: dict[str, np.ndarray], classes: Sequence[str], probabilities: Sequence[float]
    ) -> None:
        """Count rows' predictions and inputs, a whole column at a time."""
        for class_name, count in Tally(classes).items():
            self._predictions[class_name, source].inc(count)
        observe_many(self._confidence[source], np.asarray(probabilities, dtype=float))
        for watcher in self._watchers:
            watcher.observe_many(columns[watcher.name])

    def flush(self) -> None:
        """Apply what was gathered since the last flush: the small tables, by source, as one batch each."""
        with self.pending.lock:
            deferred, self._deferred = self._deferred, []
            counts = self.pending.take()
        apply(counts)
        for source in SOURCES:
            tables = [(table, predictions) for s, table, predictions in deferred if s == source]
            if not tables:
                continue
            columns = {
                watcher.name: np.concatenate([table.columns[watcher.name] for table, _ in tables])
                for watcher in self._watchers
            }
            predictions = [p for _, table_predictions in tables for p in table_predictions]
            self._observe_rows(
                source, columns, [p.class_name for p in predictions], [p.probability for p in predictions]
            )

    def count_unseen(self, feature: str) -> None:
        """Count a request refused for a category value training never saw."""
        self._unseen.labels(feature).inc()

    def count_outcomes(self, pairs: Sequence[tuple[str | None, str]]) -> None:
        """Count reported outcomes as (predicted, actual) pairs; a None predicted class is an unmatched outcome."""
        for (predicted, actual), count in Tally(pairs).items():
            if predicted is None:
                self.outcomes_unmatched.inc(count)
                continue
            series = self._outcomes.get((predicted, actual))
            if series is None:  # a class a former version of the model (same log folder) predicted
                series = self._outcomes_family.labels(predicted, actual, str(predicted == actual).lower())
            series.inc(count)

    def count_error(self, status: int, endpoint: str) -> None:
        """Count a refused or failed prediction request."""
        kind = error_kind(status)
        if kind is not None:
            self.errors.labels(kind, endpoint).inc()
