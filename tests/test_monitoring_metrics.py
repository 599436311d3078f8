"""The prediction metrics: what each request adds to them, by feature kind, checked on a registry of the test's own."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram

from modelcard.card import FeatureKind, FeatureSpec, ModelCard
from monitoring.metrics import PredictionMetrics, error_kind, observe_many
from runtime.predictor import Prediction
from runtime.table import FeatureTable
from tests.fakes import (
    CHURN_ROW,
    CLASSES,
    FEATURES,
    make_card,
    make_churn_card,
    number,
    spread,
    table_of,
    text_feature,
    unused_feature,
)


def _prediction(class_name: str, probability: float) -> Prediction:
    return Prediction(class_name, probability, {c: probability if c == class_name else 0.0 for c in CLASSES})


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> PredictionMetrics:
    return PredictionMetrics(make_card(), "classifier_clf:test", "onnx", registry=registry)


def _table(rows: list[list[float]]) -> FeatureTable:
    return table_of(make_card().features, [dict(zip(FEATURES, row, strict=True)) for row in rows])


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
    metrics.observe("api", _table([[5.1, 3.5, 1.4, 0.2]]), [_prediction("setosa", 0.97)])
    # A single prediction is gathered off Prometheus and applied by flush (every 0.5 s, and before /metrics).
    assert registry.get_sample_value("classifier_predictions_total", {"class": "setosa", "source": "api"}) == 0
    metrics.flush()
    assert registry.get_sample_value("classifier_predictions_total", {"class": "setosa", "source": "api"}) == 1
    assert registry.get_sample_value("classifier_predictions_total", {"class": "setosa", "source": "batch"}) == 0
    assert registry.get_sample_value("classifier_prediction_confidence_count", {"source": "api"}) == 1
    assert registry.get_sample_value("classifier_prediction_confidence_bucket", {"source": "api", "le": "0.95"}) == 0
    assert registry.get_sample_value("classifier_prediction_confidence_bucket", {"source": "api", "le": "0.99"}) == 1
    assert registry.get_sample_value("classifier_input_value_sum", {"feature": "sepal_length"}) == pytest.approx(5.1)
    # Deciles of the fake card's training range [1, 7] are 1.6, 2.2, ...: 5.1 lies in the 7th (index 6).
    assert registry.get_sample_value("classifier_input_decile_bucket", {"feature": "sepal_length", "le": "5.5"}) == 0
    assert registry.get_sample_value("classifier_input_decile_bucket", {"feature": "sepal_length", "le": "6.5"}) == 1
    assert registry.get_sample_value("classifier_input_decile_bucket", {"feature": "petal_width", "le": "-0.5"}) == 1
    # The fake card's training range is [1, 7] for every feature: only petal_width's 0.2 lies outside.
    outside = _samples(registry, "classifier_input_outside_training_range_total")
    assert outside == {(("feature", f),): (1.0 if f == "petal_width" else 0.0) for f in FEATURES}


def test_batch_counts_every_row(metrics: PredictionMetrics, registry: CollectorRegistry) -> None:
    rows = [[5.0, 3.0, 1.5, 0.5], [6.0, 3.0, 5.0, 2.0], [6.5, 3.0, 5.5, 2.5], [9.0, 3.0, 5.5, 2.5]]
    predictions = [_prediction("setosa", 0.9), *[_prediction("virginica", 0.55)] * 3]
    metrics.observe("batch", _table(rows), predictions)
    assert registry.get_sample_value("classifier_predictions_total", {"class": "virginica", "source": "batch"}) == 3
    assert registry.get_sample_value("classifier_predictions_total", {"class": "setosa", "source": "batch"}) == 1
    assert registry.get_sample_value("classifier_prediction_confidence_bucket", {"source": "batch", "le": "0.6"}) == 3
    assert registry.get_sample_value("classifier_input_value_count", {"feature": "petal_length"}) == 4
    assert registry.get_sample_value("classifier_input_outside_training_range_total", {"feature": "sepal_length"}) == 1
    assert registry.get_sample_value("classifier_input_outside_training_range_total", {"feature": "petal_width"}) == 1


def test_errors_by_kind(metrics: PredictionMetrics, registry: CollectorRegistry) -> None:
    for status in (400, 400, 413, 415, 401, 500, 200):
        metrics.count_error(status, "/prediction")
    counted = {
        dict(labels)["kind"]: value
        for labels, value in _samples(registry, "classifier_prediction_errors_total").items()
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


def test_outcome_series_exist_before_the_first_outcome(metrics: PredictionMetrics, registry: CollectorRegistry) -> None:
    pairs = _samples(registry, "classifier_outcomes_total")
    assert len(pairs) == len(CLASSES) ** 2 and set(pairs.values()) == {0}
    for labels in pairs:
        named = dict(labels)
        assert named["correct"] == ("true" if named["predicted"] == named["actual"] else "false")
    assert registry.get_sample_value("classifier_outcomes_unmatched_total") == 0
    assert registry.get_sample_value("classifier_outcome_log_dropped_total") == 0


def test_outcomes_are_counted_by_pair_and_unmatched(metrics: PredictionMetrics, registry: CollectorRegistry) -> None:
    metrics.count_outcomes([("setosa", "setosa"), ("setosa", "setosa"), ("virginica", "versicolor"), (None, "setosa")])
    metrics.count_outcomes([(None, "virginica"), ("setosa", "setosa")])
    counted = {
        (named["predicted"], named["actual"], named["correct"]): value
        for labels, value in _samples(registry, "classifier_outcomes_total").items()
        if value and (named := dict(labels))
    }
    assert counted == {("setosa", "setosa", "true"): 3, ("virginica", "versicolor", "false"): 1}
    assert registry.get_sample_value("classifier_outcomes_unmatched_total") == 2


def test_model_info_gauge_names_tag_runtime_and_accuracy(
    metrics: PredictionMetrics, registry: CollectorRegistry
) -> None:
    labels = {"model": "classifier_clf:test", "runtime": "onnx", "accuracy": "0.9500"}
    assert registry.get_sample_value("classifier_model_info", labels) == 1


def test_test_accuracy_is_a_number_to_compare_live_accuracy_with(
    metrics: PredictionMetrics, registry: CollectorRegistry
) -> None:
    assert registry.get_sample_value("classifier_model_test_accuracy") == make_card().metrics.accuracy


@pytest.mark.parametrize(("status", "kind"), [(200, None), (404, "client"), (422, "validation"), (503, "internal")])
def test_error_kind(status: int, kind: str | None) -> None:
    assert error_kind(status) == kind


def test_the_batch_and_single_paths_count_the_same(registry: CollectorRegistry) -> None:
    rows = [[0.5, 3.0, 1.5, 0.5], [6.0, 3.0, 5.0, 2.0], [7.0, 1.0, 9.5, 2.5]]
    one, many = CollectorRegistry(), CollectorRegistry()
    single = PredictionMetrics(make_card(), "m", "onnx", registry=one)
    for row in rows:
        single.observe("api", _table([row]), [_prediction("setosa", 0.9)])
    single.flush()
    PredictionMetrics(make_card(), "m", "onnx", registry=many).observe(
        "api", _table(rows), [_prediction("setosa", 0.9)] * 3
    )
    for name in ("classifier_input_decile_bucket", "classifier_input_outside_training_range_total"):
        assert _samples(many, name) == _samples(one, name), name


def test_categories_booleans_and_blanks_are_counted_by_value(registry: CollectorRegistry) -> None:
    card = make_churn_card()
    metrics = PredictionMetrics(card, "churn_clf:test", "onnx", registry=registry)
    rows = [CHURN_ROW, {**CHURN_ROW, "contract": "two_year", "seniorcitizen": True, "paymentmethod": None}]
    predictions = [Prediction("yes", 0.8, {"no": 0.2, "yes": 0.8})] * 2
    metrics.observe("batch", table_of(card.features, rows), predictions)
    metrics.observe("api", table_of(card.features, rows[:1]), predictions[:1])
    metrics.flush()
    count = registry.get_sample_value
    assert count("classifier_input_category_total", {"feature": "contract", "value": "month-to-month"}) == 2
    assert count("classifier_input_category_total", {"feature": "contract", "value": "two_year"}) == 1
    assert count("classifier_input_category_total", {"feature": "contract", "value": "one_year"}) == 0
    assert count("classifier_input_category_total", {"feature": "seniorcitizen", "value": "true"}) == 1
    assert count("classifier_input_category_total", {"feature": "seniorcitizen", "value": "false"}) == 2
    assert count("classifier_input_missing_total", {"feature": "paymentmethod"}) == 1
    assert count("classifier_input_missing_total", {"feature": "totalcharges"}) == 3
    assert count("classifier_input_value_count", {"feature": "tenure"}) == 3
    assert count("classifier_input_unseen_category_total", {"feature": "contract"}) == 0
    metrics.count_unseen("contract")
    assert count("classifier_input_unseen_category_total", {"feature": "contract"}) == 1


def test_category_series_are_bounded() -> None:

    many = {f"value-{i:03d}": 100 - i for i in range(80)}
    card = make_churn_card().model_copy(
        update={
            "features": [
                FeatureSpec(name="city", kind=FeatureKind.CATEGORY, dtype="str", nullable=False, categories=many)
            ]
        }
    )
    registry = CollectorRegistry()
    metrics = PredictionMetrics(card, "m", "onnx", registry=registry)
    table = table_of(card.features, [{"city": "value-079"}, {"city": "value-000"}])
    metrics.observe("batch", table, [Prediction("yes", 0.8, {"no": 0.2, "yes": 0.8})] * 2)
    values = {dict(labels)["value"] for labels in _samples(registry, "classifier_input_category_total")}
    assert len(values) == 31 and "(other)" in values
    assert registry.get_sample_value("classifier_input_category_total", {"feature": "city", "value": "(other)"}) == 1


def test_deferred_increments_match_prometheus_own_and_none_is_lost_to_a_concurrent_flush() -> None:
    import threading

    from prometheus_client import Counter, Summary

    from monitoring.metrics import Pending

    deferred, direct = CollectorRegistry(), CollectorRegistry()
    made = {}
    for name, registry in (("deferred", deferred), ("direct", direct)):
        made[name] = (
            Counter("c", "d", registry=registry),
            Histogram("h", "d", buckets=[0.5, 1.0, 2.5], registry=registry),
            Summary("s", "d", registry=registry),
        )
    values = [0.1, 0.5, 0.7, 1.0, 2.4, 2.5, 3.0] * 300
    counter, histogram, summary = made["direct"]
    for value in values:
        counter.inc()
        histogram.observe(value)
        summary.observe(value)
    pending = Pending()
    counter, histogram, summary = made["deferred"]

    def request_path(chunk: list[float]) -> None:
        for value in chunk:
            with pending.lock:
                pending.add(counter._value)
                pending.observe(histogram, value)
                pending.add(summary._count)
                pending.add(summary._sum, value)

    threads = [threading.Thread(target=request_path, args=(values[i::4],)) for i in range(4)]
    flusher = threading.Event()

    def flush_while_busy() -> None:
        while not flusher.is_set():
            pending.flush()

    background = threading.Thread(target=flush_while_busy)
    background.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flusher.set()
    background.join()
    pending.flush()
    for name in ("c_total", "h_bucket", "h_count", "s_count"):
        assert _samples(deferred, name) == _samples(direct, name), name
    for name in ("h_sum", "s_sum"):
        assert _samples(deferred, name) == pytest.approx(_samples(direct, name)), name


def test_single_predictions_flushed_together_count_as_the_same_rows_in_a_batch() -> None:
    card = make_churn_card()
    rows = [
        CHURN_ROW,
        {**CHURN_ROW, "contract": "two_year", "seniorcitizen": True, "paymentmethod": None},
        {**CHURN_ROW, "tenure": 500, "monthlycharges": None, "contract": "a_value_past_the_30_watched"},
    ]
    predictions = [
        Prediction("yes", 0.97, {"no": 0.03, "yes": 0.97}),
        Prediction("no", 0.51, {"no": 0.51, "yes": 0.49}),
    ]
    predictions.append(Prediction("yes", 0.6, {"no": 0.4, "yes": 0.6}))
    singles, batch = CollectorRegistry(), CollectorRegistry()
    one_by_one = PredictionMetrics(card, "churn_clf:test", "onnx", registry=singles)
    for row, prediction in zip(rows, predictions, strict=True):
        one_by_one.observe("api", table_of(card.features, [row]), [prediction])
    one_by_one.flush()
    PredictionMetrics(card, "churn_clf:test", "onnx", registry=batch).observe(
        "api", table_of(card.features, rows), predictions
    )
    for metric in singles.collect():
        for sample in metric.samples:
            assert batch.get_sample_value(sample.name, sample.labels) == pytest.approx(sample.value), sample


def test_an_idle_worker_flushes_nothing_until_something_is_counted(registry: CollectorRegistry) -> None:
    from monitoring.monitor import METRICS_FLUSH_S, Monitor

    monitor = Monitor(make_card(), "classifier_clf:test", "onnx", None)
    monitor.start(registry=registry)
    flushes: list[int] = []
    flush = monitor.flush_metrics

    def counted_flush() -> None:
        flushes.append(1)
        flush()

    monitor.flush_metrics = counted_flush  # type: ignore[method-assign]
    time.sleep(3 * METRICS_FLUSH_S)  # a flush thread on a timer would have flushed three times
    assert flushes == []
    monitor.record("api", _table([[5.1, 3.5, 1.4, 0.2]]), [_prediction("setosa", 0.9)], 0.001)
    deadline = time.monotonic() + 10 * METRICS_FLUSH_S
    while not flushes and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(flushes) == 1
    assert registry.get_sample_value("classifier_predictions_total", {"class": "setosa", "source": "api"}) == 1
    monitor.close()


def review_card() -> ModelCard:
    """A card with a number, a review (lengths 10 to 100 in training) and a customer id the model never reads."""
    review = text_feature("review", ["the", "product", "is", "good", "bad"], spread(10, 100), 0.1)
    features = [number("stars", 1, 5, integer=True), review, unused_feature("customer_id")]
    return make_churn_card().model_copy(update={"features": features})


REVIEWS: list[dict[str, Any]] = [
    {"stars": 4, "review": "The product is good", "customer_id": "c-1"},  # 19 characters, 4 words, none new
    {"stars": 1, "review": "Terrible delivery, bad", "customer_id": 17},  # 22 characters, 3 words, 2 new
    {"stars": 3, "review": None, "customer_id": None},  # a blank
    {"stars": 5, "review": "ok", "customer_id": True},  # 2 characters, shorter than any in training; 1 new word
]
YES = Prediction("yes", 0.8, {"no": 0.2, "yes": 0.8})


def test_text_is_counted_by_length_words_and_new_words(registry: CollectorRegistry) -> None:
    card = review_card()
    metrics = PredictionMetrics(card, "reviews:test", "sklearn", registry=registry)
    metrics.observe("batch", table_of(card.features, REVIEWS), [YES] * len(REVIEWS))
    count = registry.get_sample_value
    review = {"feature": "review"}
    assert count("classifier_input_text_length_count", review) == 3
    assert count("classifier_input_text_length_sum", review) == 19 + 22 + 2
    # Training lengths 10 to 100 have inner deciles 19, 28, ...: 19 and 22 lie in decile 1, 2 below the minimum.
    assert count("classifier_input_text_length_decile_bucket", {**review, "le": "-0.5"}) == 1
    assert count("classifier_input_text_length_decile_bucket", {**review, "le": "0.5"}) == 1
    assert count("classifier_input_text_length_decile_bucket", {**review, "le": "1.5"}) == 3
    assert count("classifier_input_text_length_outside_training_range_total", review) == 1
    assert count("classifier_input_text_words_total", review) == 8
    assert count("classifier_input_text_unseen_words_total", review) == 3
    assert count("classifier_input_missing_total", review) == 1
    # The text's length is not a number's value: the numeric families hold the stars alone.
    assert set(_samples(registry, "classifier_input_value_count")) == {(("feature", "stars"),)}


def test_unused_and_text_features_get_no_category_series(registry: CollectorRegistry) -> None:
    card = review_card()
    metrics = PredictionMetrics(card, "reviews:test", "sklearn", registry=registry)
    metrics.observe("batch", table_of(card.features, REVIEWS), [YES] * len(REVIEWS))
    metrics.flush()
    named = {
        (sample.name, sample.labels.get("feature"))
        for metric in registry.collect()
        for sample in metric.samples
        if "feature" in sample.labels
    }
    assert not any(feature == "customer_id" for _, feature in named)
    assert {feature for name, feature in named if name == "classifier_input_unseen_category_total"} == set()
    assert {feature for name, feature in named if name == "classifier_input_category_total"} == set()
    assert {feature for name, feature in named if name == "classifier_input_missing_total"} == {"stars", "review"}


def test_text_series_exist_before_the_first_request(registry: CollectorRegistry) -> None:
    PredictionMetrics(review_card(), "reviews:test", "sklearn", registry=registry)
    for name in ("classifier_input_text_words_total", "classifier_input_text_unseen_words_total"):
        assert registry.get_sample_value(name, {"feature": "review"}) == 0, name


def test_single_text_predictions_flushed_together_count_as_a_batch() -> None:
    card = review_card()
    singles, batch = CollectorRegistry(), CollectorRegistry()
    one_by_one = PredictionMetrics(card, "reviews:test", "sklearn", registry=singles)
    for row in REVIEWS:
        one_by_one.observe("api", table_of(card.features, [row]), [YES])
    one_by_one.flush()
    PredictionMetrics(card, "reviews:test", "sklearn", registry=batch).observe(
        "api", table_of(card.features, REVIEWS), [YES] * len(REVIEWS)
    )
    compared = 0
    for metric in singles.collect():
        for sample in metric.samples:
            assert batch.get_sample_value(sample.name, sample.labels) == pytest.approx(sample.value), sample
            compared += sample.name.startswith("classifier_input_text_")
    assert compared > 10
