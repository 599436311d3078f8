"""The prediction metrics: what each request adds to them, checked on a registry of the test's own."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram

from monitoring.metrics import PredictionMetrics, error_kind, feature_buckets, observe_many
from serving.predictor import Prediction
from tests.fakes import CLASSES, FEATURES, make_card


def _prediction(class_name: str, probability: float) -> Prediction:
    return Prediction(class_name, probability, {c: probability if c == class_name else 0.0 for c in CLASSES})


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> PredictionMetrics:
    return PredictionMetrics(make_card(), "iris_clf:test", "onnx", registry=registry)


def _samples(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for metric in registry.collect()
        for s in metric.samples
        if s.name == name
    }


def test_observe_many_matches_observe_one_by_one() -> None:
    values = np.array([0.1, 0.5, 0.5000001, 1.0, 2.0, 2.5, 7.9, 100.0, -3.0, 0.0])
    one_by_one, at_once = CollectorRegistry(), CollectorRegistry()
    buckets = [0.5, 1.0, 2.5, 5.0]
    single = Histogram("h", "d", buckets=buckets, registry=one_by_one)
    for value in values:
        single.observe(float(value))
    observe_many(Histogram("h", "d", buckets=buckets, registry=at_once), values)
    assert _samples(at_once, "h_bucket") == _samples(one_by_one, "h_bucket")
    assert _samples(at_once, "h_sum") == pytest.approx(_samples(one_by_one, "h_sum"))
    assert _samples(at_once, "h_count") == _samples(one_by_one, "h_count")


def test_single_prediction_counts_class_confidence_and_features(
    metrics: PredictionMetrics, registry: CollectorRegistry
) -> None:
    metrics.observe("api", [[5.1, 3.5, 1.4, 0.2]], [_prediction("setosa", 0.97)])
    assert registry.get_sample_value("iris_predictions_total", {"class": "setosa", "source": "api"}) == 1
    assert registry.get_sample_value("iris_predictions_total", {"class": "setosa", "source": "batch"}) == 0
    assert registry.get_sample_value("iris_prediction_confidence_count", {"source": "api"}) == 1
    assert registry.get_sample_value("iris_prediction_confidence_bucket", {"source": "api", "le": "0.95"}) == 0
    assert registry.get_sample_value("iris_prediction_confidence_bucket", {"source": "api", "le": "0.99"}) == 1
    assert registry.get_sample_value("iris_input_feature_sum", {"feature": "sepal_length"}) == pytest.approx(5.1)
    # The fake card's training range is [1, 7] for every feature: only petal_width's 0.2 lies outside.
    outside = _samples(registry, "iris_input_outside_training_range_total")
    assert outside == {(("feature", f),): (1.0 if f == "petal_width" else 0.0) for f in FEATURES}


def test_batch_counts_every_row(metrics: PredictionMetrics, registry: CollectorRegistry) -> None:
    rows = [[5.0, 3.0, 1.5, 0.5], [6.0, 3.0, 5.0, 2.0], [6.5, 3.0, 5.5, 2.5], [9.0, 3.0, 5.5, 2.5]]
    predictions = [_prediction("setosa", 0.9), *[_prediction("virginica", 0.55)] * 3]
    metrics.observe("batch", rows, predictions)
    assert registry.get_sample_value("iris_predictions_total", {"class": "virginica", "source": "batch"}) == 3
    assert registry.get_sample_value("iris_predictions_total", {"class": "setosa", "source": "batch"}) == 1
    assert registry.get_sample_value("iris_prediction_confidence_bucket", {"source": "batch", "le": "0.6"}) == 3
    assert registry.get_sample_value("iris_input_feature_count", {"feature": "petal_length"}) == 4
    assert registry.get_sample_value("iris_input_outside_training_range_total", {"feature": "sepal_length"}) == 1
    assert registry.get_sample_value("iris_input_outside_training_range_total", {"feature": "petal_width"}) == 1


def test_errors_by_kind(metrics: PredictionMetrics, registry: CollectorRegistry) -> None:
    for status in (400, 400, 413, 415, 401, 500, 200):
        metrics.count_error(status, "/prediction")
    counted = {
        dict(labels)["kind"]: value
        for labels, value in _samples(registry, "iris_prediction_errors_total").items()
        if dict(labels)["endpoint"] == "/prediction"
    }
    assert counted == {
        "validation": 2,
        "too_large": 1,
        "unsupported_media_type": 1,
        "unauthorized": 1,
        "internal": 1,
        "client": 0,
    }


def test_model_info_gauge_names_tag_runtime_and_accuracy(
    metrics: PredictionMetrics, registry: CollectorRegistry
) -> None:
    labels = {"model": "iris_clf:test", "runtime": "onnx", "accuracy": "0.9500"}
    assert registry.get_sample_value("iris_model_info", labels) == 1


@pytest.mark.parametrize(("status", "kind"), [(200, None), (404, "client"), (422, "validation"), (503, "internal")])
def test_error_kind(status: int, kind: str | None) -> None:
    assert error_kind(status) == kind


def test_feature_buckets_cover_the_training_range_with_room() -> None:
    buckets = feature_buckets(make_card())
    assert buckets == sorted(buckets)
    assert buckets[0] > 0 and buckets[-1] >= 7.0 * 1.25
