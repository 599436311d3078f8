"""Prometheus metrics about the model's predictions, served on /metrics beside BentoML's request metrics.

prometheus_client is imported when the metrics are created, never at module import: BentoML sets
PROMETHEUS_MULTIPROC_DIR in each worker after importing the service, and a client imported earlier
would write to a registry that /metrics never reads.
"""

from __future__ import annotations

import math
from collections import Counter as Tally
from collections.abc import Sequence
from typing import Any

import numpy as np

from serving.card import ModelCard
from serving.predictor import Prediction

SOURCES = ("api", "batch", "ui")
# The winning probability: with three classes it is never below 1/3, and alerts care about the low end.
CONFIDENCE_BUCKETS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
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


def feature_buckets(card: ModelCard, count: int = 24) -> list[float]:
    """Histogram edges shared by every feature: zero to a quarter past the largest training value."""
    low = min(0.0, min(s.min for s in card.feature_stats.values()))
    high = max(s.max for s in card.feature_stats.values()) * 1.25
    step = (high - low) / count
    return [round(low + step * i, 3) for i in range(1, count + 1)]


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


class PredictionMetrics:
    """The model's own metrics: what it predicts, how sure it is, what it is fed, and what it refuses."""

    def __init__(self, card: ModelCard, model_tag: str, runtime: str, registry: Any = None) -> None:
        import prometheus_client as prom

        options: dict[str, Any] = {} if registry is None else {"registry": registry}
        self.feature_names = card.feature_names
        predictions = prom.Counter(
            "iris_predictions",
            "Predictions made, by predicted class and where the request came from (api, batch, ui)",
            ["class", "source"],
            **options,
        )
        confidence = prom.Histogram(
            "iris_prediction_confidence",
            "Probability of the predicted class",
            ["source"],
            buckets=CONFIDENCE_BUCKETS,
            **options,
        )
        features = prom.Histogram(
            "iris_input_feature",
            "Input feature values, in the model's units",
            ["feature"],
            buckets=feature_buckets(card),
            **options,
        )
        outside = prom.Counter(
            "iris_input_outside_training_range",
            "Input values outside the [min, max] the feature had in the training data",
            ["feature"],
            **options,
        )
        self.errors = prom.Counter(
            "iris_prediction_errors",
            "Prediction requests refused or failed, by kind (validation, too_large, ..., internal)",
            ["kind", "endpoint"],
            **options,
        )
        self.log_dropped = prom.Counter(
            "iris_prediction_log_dropped",
            "Prediction-log rows dropped: the writer fell behind, or the folder was full or not writable",
            **options,
        )
        info = prom.Gauge(
            "iris_model_info",
            "The model being served (always 1)",
            ["model", "runtime", "accuracy"],
            multiprocess_mode="max",
            **options,
        )
        info.labels(model_tag, runtime, f"{card.metrics.accuracy:.4f}").set(1)
        # Children resolved once: .labels() costs more than the increment itself on the hot path.
        self._predictions = {(c, s): predictions.labels(c, s) for c in card.class_names for s in SOURCES}
        self._confidence = {s: confidence.labels(s) for s in SOURCES}
        self._features = [features.labels(n) for n in self.feature_names]
        self._outside = [outside.labels(n) for n in self.feature_names]
        self._low = np.array([card.feature_stats[n].min for n in self.feature_names])
        self._high = np.array([card.feature_stats[n].max for n in self.feature_names])
        self._bounds = list(zip(self._low.tolist(), self._high.tolist(), strict=True))
        # Every series exists from the start, so rate() and absent() work before the first request.
        for endpoint in ("/prediction", "/predict_batch"):
            for kind in (*sorted(set(ERROR_KINDS.values())), "client", "internal"):
                self.errors.labels(kind, endpoint)

    def observe(self, source: str, rows: Sequence[Sequence[float]], predictions: Sequence[Prediction]) -> None:
        """Count a request's predictions and record its inputs."""
        if len(predictions) == 1:
            self._observe_one(source, rows[0], predictions[0])
            return
        for class_name, count in Tally(p.class_name for p in predictions).items():
            self._predictions[class_name, source].inc(count)
        observe_many(self._confidence[source], np.fromiter((p.probability for p in predictions), float))
        table = np.asarray(rows, dtype=float)
        for column, histogram in enumerate(self._features):
            observe_many(histogram, table[:, column])
        for column, count in enumerate(((table < self._low) | (table > self._high)).sum(axis=0).tolist()):
            if count:
                self._outside[column].inc(count)

    def _observe_one(self, source: str, row: Sequence[float], prediction: Prediction) -> None:
        """observe() for a single row, without numpy: this runs on every /prediction call."""
        self._predictions[prediction.class_name, source].inc()
        self._confidence[source].observe(prediction.probability)
        parts = zip(row, self._features, self._outside, self._bounds, strict=True)
        for value, histogram, outside, (low, high) in parts:
            histogram.observe(value)
            if value < low or value > high or math.isnan(value):
                outside.inc()

    def count_error(self, status: int, endpoint: str) -> None:
        """Count a refused or failed prediction request."""
        kind = error_kind(status)
        if kind is not None:
            self.errors.labels(kind, endpoint).inc()
