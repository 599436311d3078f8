"""A real Prometheus scrapes the served bento: the prediction counters it stores rise by exactly what was sent."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client

from tests.conftest import ROOT
from tests.e2e.prometheus import Prometheus, run_prometheus
from tests.e2e.server import Server
from tests.fakes import SETOSA, VIRGINICA

pytestmark = pytest.mark.slow

VERSICOLOR = {"sepal_length": 5.9, "sepal_width": 2.8, "petal_length": 4.3, "petal_width": 1.3}
SAMPLES = {"setosa": SETOSA, "versicolor": VERSICOLOR, "virginica": VIRGINICA}
DASHBOARD = ROOT / "deploy" / "grafana" / "classifier-dashboard.json"


@pytest.fixture(scope="module")
def prometheus(served_bento: Server, tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[Prometheus]:
    target = served_bento.url.removeprefix("http://")
    with run_prometheus(target, tmp_path_factory.mktemp("prometheus"), artifacts / "prometheus.log") as server:
        assert server.wait_for('up{job="model-service"}', 1.0) == 1.0, "Prometheus never scraped the service"
        yield server


def _settled(prometheus: Prometheus, promql: str) -> float:
    """The query's value once Prometheus has scraped everything sent so far (two scrape intervals later)."""
    time.sleep(2.5)
    return prometheus.value(promql)


def _predictions(source: str, class_name: str) -> str:
    return f'sum(classifier_predictions_total{{source="{source}",class="{class_name}"}})'


def test_per_class_counters_rise_by_what_was_sent(served_bento: Server, prometheus: Prometheus) -> None:
    sent = {"setosa": 7, "versicolor": 4, "virginica": 9}
    time.sleep(2.5)  # let Prometheus scrape what earlier tests sent
    before = {c: prometheus.value(_predictions("api", c)) for c in sent}
    with httpx.Client(base_url=served_bento.url) as client:
        for class_name, count in sent.items():
            for _ in range(count):
                response = client.post("/prediction", json=SAMPLES[class_name])
                assert response.json()["class"] == class_name
    for class_name, count in sent.items():
        query = _predictions("api", class_name)
        assert prometheus.wait_for(query, before[class_name] + count) == before[class_name] + count, class_name


def test_batch_rows_are_counted_per_class(served_bento: Server, prometheus: Prometheus) -> None:
    rows = [SETOSA] * 5 + [VIRGINICA] * 3
    before = {c: _settled(prometheus, _predictions("batch", c)) for c in ("setosa", "virginica")}
    assert httpx.post(f"{served_bento.url}/predict_batch", json=rows).status_code == 200
    assert prometheus.wait_for(_predictions("batch", "setosa"), before["setosa"] + 5) == before["setosa"] + 5
    assert prometheus.wait_for(_predictions("batch", "virginica"), before["virginica"] + 3) == before["virginica"] + 3


def test_ui_predictions_are_counted_as_source_ui(served_bento: Server, prometheus: Prometheus) -> None:
    before = _settled(prometheus, _predictions("ui", "virginica"))
    client = Client(f"{served_bento.url}/ui/", verbose=False)
    for _ in range(2):
        bars, _verdict, _picture = client.predict(*VIRGINICA.values(), api_name="/predict")
        assert bars["label"] == "virginica"
    assert prometheus.wait_for(_predictions("ui", "virginica"), before + 2) == before + 2


def test_validation_errors_and_confidence_are_stored(served_bento: Server, prometheus: Prometheus) -> None:
    errors = 'sum(classifier_prediction_errors_total{kind="validation",endpoint="/prediction"})'
    confident = 'sum(classifier_prediction_confidence_count{source="api"})'
    before_errors, before_confident = _settled(prometheus, errors), prometheus.value(confident)
    assert httpx.post(f"{served_bento.url}/prediction", json={**SETOSA, "sepal_width": None}).status_code == 400
    assert httpx.post(f"{served_bento.url}/prediction", json=SETOSA).status_code == 200
    assert prometheus.wait_for(errors, before_errors + 1) == before_errors + 1
    assert prometheus.wait_for(confident, before_confident + 1) == before_confident + 1
    assert prometheus.value('count(classifier_model_info{runtime="onnx"})') == 1


def test_alert_rules_load_and_evaluate_cleanly(prometheus: Prometheus) -> None:
    time.sleep(2.5)  # at least one evaluation of every group
    groups = httpx.get(f"{prometheus.url}/api/v1/rules").json()["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {r["name"] for r in rules if r["type"] == "alerting"} >= {
        "ClassifierHighErrorRate",
        "ClassifierHighLatencyP99",
        "ClassifierNoTraffic",
        "ClassifierLowConfidence",
        "ClassifierInputDrift",
    }
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []
    # The service is up and busy: none of the page-worthy alerts may be pending or firing.
    alerts = httpx.get(f"{prometheus.url}/api/v1/alerts").json()["data"]["alerts"]
    assert [a for a in alerts if a["labels"]["alertname"] in ("ClassifierDown", "ClassifierHighErrorRate")] == []


@pytest.fixture(scope="module")
def churn_prometheus(
    served_churn_bento: Server, tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> Iterator[Prometheus]:
    """A Prometheus of its own scraping the churn bento, whose features are of every kind."""
    target = served_churn_bento.url.removeprefix("http://")
    with run_prometheus(
        target, tmp_path_factory.mktemp("prometheus-churn"), artifacts / "prometheus-churn.log"
    ) as server:
        assert server.wait_for('up{job="model-service"}', 1.0) == 1.0, "Prometheus never scraped the churn service"
        yield server


def report_outcomes(client: httpx.Client, outcomes: list[dict[str, object]], timeout: float = 10) -> None:
    """POST /feedback until every outcome is matched: a prediction reaches its log file within about a second."""
    deadline = time.monotonic() + timeout
    while (reported := client.post("/feedback", json=outcomes).json())["unmatched"]:
        assert time.monotonic() < deadline, reported
        time.sleep(0.2)


def test_every_dashboard_query_runs_on_real_data(served_churn_bento: Server, churn_prometheus: Prometheus) -> None:
    card = httpx.get(f"{served_churn_bento.url}/model").json()["card"]
    row = {k: v for k, v in card["examples"][0].items() if k != "label"}
    with httpx.Client(base_url=served_churn_bento.url) as client:
        for _ in range(3):
            assert client.post("/prediction", json={**row, "totalcharges": None}).status_code == 200
            batch = client.post("/predict_batch", json=[row, row])
            assert batch.status_code == 200
            assert client.post("/prediction", json={**row, "contract": "weekly"}).status_code == 400
        # One outcome predicted right and one wrong, for the live accuracy and the confusion matrix.
        predicted, request_id = batch.json()[0]["class"], batch.headers["X-Request-ID"]
        other = next(c for c in card["class_names"] if c != predicted)
        report_outcomes(
            client,
            [
                {"request_id": request_id, "row": 0, "label": predicted},
                {"request_id": request_id, "row": 1, "label": other},
            ],
        )
    time.sleep(5)  # two scrapes and a rule evaluation
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(queries) >= 17
    for query in queries:
        result = churn_prometheus.query(_plain(query))
        assert result, f"no data for dashboard query {query}"
    live, _test, _threshold = _panel(dashboard, "Live accuracy")
    assert 0 <= churn_prometheus.value(_plain(live)) <= 1  # a number: not 0/0
    (matrix,) = _panel(dashboard, "Live confusion matrix")
    assert sum(float(s["value"][1]) for s in churn_prometheus.query(_plain(matrix))) >= 2


def _plain(query: str) -> str:
    """A dashboard query with a plain range for Grafana's own variables."""
    return re.sub(r"\$__(rate_interval|range)", "1m", query)


def _panel(dashboard: dict[str, Any], title: str) -> list[str]:
    """The queries of the dashboard's panel whose title starts so."""
    (panel,) = [p for p in dashboard["panels"] if p["title"].startswith(title)]
    return [target["expr"] for target in panel["targets"]]
