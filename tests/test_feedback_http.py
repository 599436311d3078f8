"""POST /feedback through the service's ASGI app: outcomes matched with logged predictions, counted and kept."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from monitoring.outcomes import read_outcomes
from monitoring.predlog import default_prediction_log
from tests.fakes import SETOSA, VIRGINICA
from tests.test_monitoring_service import _logged


def _count(name: str, **labels: str) -> float:
    sys.modules["service"].monitor.flush_metrics()
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _outcomes_of(request_id: str, home: Path, timeout: float = 5.0) -> list[str]:
    """The labels the outcome log holds for a request, once the writer has written them."""
    directory = default_prediction_log({"BENTOML_HOME": str(home)})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [o.label for o in read_outcomes(directory) if o.request_id == request_id]
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"no outcome for {request_id} in {directory}")


def test_an_outcome_for_a_logged_prediction_is_matched_counted_and_kept(
    http_client: TestClient, bentoml_home: Path, trained_tag: str
) -> None:
    answer = http_client.post("/prediction", json=VIRGINICA, headers={"x-request-id": "feedback-single"})
    assert answer.json()["class"] == "virginica"
    _logged("feedback-single", bentoml_home)
    before = _count("classifier_outcomes_total", predicted="virginica", actual="versicolor", correct="false")
    reported = http_client.post("/feedback", json=[{"request_id": "feedback-single", "label": "versicolor"}])
    assert reported.status_code == 200, reported.text
    assert reported.json() == {
        "received": 1, "matched": 1, "unmatched": 0, "unmatched_request_ids": [], "unmatched_keys": [],
        "model": trained_tag,
    }  # fmt: skip
    after = _count("classifier_outcomes_total", predicted="virginica", actual="versicolor", correct="false")
    assert after == before + 1
    assert _outcomes_of("feedback-single", bentoml_home) == ["versicolor"]


def test_a_batch_rows_outcomes_and_unknown_ones_are_told_apart(http_client: TestClient, bentoml_home: Path) -> None:
    http_client.post("/predict_batch", json=[SETOSA, VIRGINICA], headers={"x-request-id": "feedback-batch"})
    _logged("feedback-batch", bentoml_home, rows=2)
    unmatched_before = _count("classifier_outcomes_unmatched_total")
    reported = http_client.post(
        "/feedback",
        json=[
            {"request_id": "feedback-batch", "row": 0, "label": "setosa"},
            {"request_id": "feedback-batch", "row": 1, "label": "virginica"},
            {"request_id": "feedback-batch", "row": 2, "label": "setosa"},  # the batch had two rows
            {"request_id": "never-answered", "label": "setosa"},
        ],
    ).json()
    assert (reported["received"], reported["matched"], reported["unmatched"]) == (4, 2, 2)
    assert reported["unmatched_request_ids"] == ["feedback-batch", "never-answered"]
    assert _count("classifier_outcomes_unmatched_total") == unmatched_before + 2
    assert _outcomes_of("never-answered", bentoml_home) == ["setosa"]  # kept all the same: it may join later


def test_a_label_that_is_not_a_class_is_refused_naming_the_classes(http_client: TestClient) -> None:
    refused = http_client.post("/feedback", json=[{"request_id": "x", "label": "daisy"}])
    assert refused.status_code == 400
    body = refused.json()
    assert "setosa" in json.dumps(body) and "versicolor" in json.dumps(body) and "label" in json.dumps(body)


def test_bad_bodies_are_refused_with_a_4xx(http_client: TestClient) -> None:
    assert http_client.post("/feedback", content=b"[{", headers={"content-type": "application/json"}).status_code == 400
    assert http_client.post("/feedback", json=[]).status_code == 400
    assert http_client.post("/feedback", json=[{"request_id": "a b", "label": "setosa"}]).status_code == 400
    assert http_client.post("/feedback", json=[{"request_id": "x", "label": "setosa", "extra": 1}]).status_code == 400
    assert http_client.post("/feedback", content=b"x", headers={"content-type": "text/plain"}).status_code == 415


def test_the_openapi_document_describes_feedback(http_client: TestClient) -> None:
    document = http_client.get("/docs.json").json()
    operation = document["paths"]["/feedback"]["post"]
    assert operation["requestBody"]["required"] is True
    outcome = document["components"]["schemas"]["Outcome"]
    assert outcome["example"]["label"] in ("setosa", "versicolor", "virginica")
    by_id, by_key = outcome["oneOf"]  # one way or the other, never both: the service refuses both
    for way, named in ((by_id, "request_id"), (by_key, "key")):
        assert set(way["properties"]["label"]["enum"]) == {"setosa", "versicolor", "virginica"}
        assert way["required"] == [named, "label"] and way["additionalProperties"] is False
    assert "since" not in by_id["properties"] and "row" not in by_key["properties"]
    key = document["components"]["schemas"]["OutcomeKey"]
    assert key["additionalProperties"] is False and key["minProperties"] == 1
    assert set(key["properties"]) == {"sepal_length", "sepal_width", "petal_length", "petal_width"}


def test_an_outcome_by_key_matches_the_newest_prediction_with_those_values(
    http_client: TestClient, bentoml_home: Path
) -> None:
    row = {**VIRGINICA, "sepal_length": 7.77}  # values no other test sends
    for request_id in ("keyed-older", "keyed-newer"):
        http_client.post("/prediction", json=row, headers={"x-request-id": request_id})
        _logged(request_id, bentoml_home)
    since = datetime.now(UTC) - timedelta(minutes=5)
    reported = http_client.post(
        "/feedback",
        json=[
            {"key": {"sepal_length": 7.77, "petal_width": row["petal_width"]}, "since": since.isoformat(),
             "label": "versicolor"},
            {"key": {"sepal_length": 7.77}, "until": since.isoformat(), "label": "setosa"},  # none that early
        ],
    )  # fmt: skip
    assert reported.status_code == 200, reported.text
    body = reported.json()
    assert (body["matched"], body["unmatched"], body["unmatched_keys"]) == (1, 1, [{"sepal_length": 7.77}])
    assert _outcomes_of("keyed-newer", bentoml_home) == ["versicolor"]  # kept with the prediction it matched


def test_outcomes_in_csv_are_taken_like_json(http_client: TestClient, bentoml_home: Path) -> None:
    http_client.post("/predict_batch", json=[SETOSA, {**SETOSA, "sepal_length": 4.44}], headers={"x-request-id": "csv"})
    _logged("csv", bentoml_home, rows=2)
    body = "\ufeffrequest_id,row,sepal_length,label\r\ncsv,0,,setosa\r\n,,4.44,virginica\r\n"
    reported = http_client.post("/feedback", content=body.encode(), headers={"content-type": "text/csv"})
    assert reported.status_code == 200, reported.text
    assert (reported.json()["received"], reported.json()["matched"]) == (2, 2)
    assert _outcomes_of("csv", bentoml_home) == ["setosa", "virginica"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("request_id,label,colour\nx,setosa,red\n", "colour"),  # not a column of the card
        ("request_id,row\nx,0\n", "label"),
        ("request_id,row,label\nx,first,setosa\n", "row"),
        ("request_id,label\nx,daisy\n", "versicolor"),  # the classes are listed
        ("request_id,label\nx,setosa,extra\n", "header"),
    ],
)
def test_a_bad_csv_is_refused_naming_what_is_wrong(http_client: TestClient, body: str, named: str) -> None:
    refused = http_client.post("/feedback", content=body.encode(), headers={"content-type": "text/csv"})
    assert refused.status_code == 400, refused.text
    assert named in refused.text


@pytest.mark.parametrize(
    ("outcome", "named"),
    [
        ({"request_id": "x", "key": {"sepal_length": 5.1}, "label": "setosa"}, "either request_id"),
        ({"label": "setosa"}, "either request_id"),
        ({"key": {"colour": "red"}, "label": "setosa"}, "sepal_length"),  # the columns are listed
        ({"key": {}, "label": "setosa"}, "key"),
        ({"key": {"sepal_length": None}, "label": "setosa"}, "sepal_length"),
        ({"key": {"sepal_length": 5.1}, "row": 1, "label": "setosa"}, "row cannot go with key"),
        ({"request_id": "x", "since": "2026-01-01T00:00:00Z", "label": "setosa"}, "since cannot go with request_id"),
        ({"key": {"sepal_length": [5.1]}, "label": "setosa"}, "sepal_length"),  # a value is a scalar
        ({"key": {"sepal_length": 5.1}, "until": 0, "label": "setosa"}, "until"),  # not a Unix time: a date and time
        ({"key": {"sepal_length": 5.1}, "since": "2026-11-01", "label": "setosa"}, "since"),
        ({"key": {"sepal_length": 5.1}, "since": "last week", "label": "setosa"}, "since"),
    ],
)
def test_a_bad_keyed_outcome_is_refused_naming_what_is_wrong(
    http_client: TestClient, outcome: dict, named: str
) -> None:
    refused = http_client.post("/feedback", json=[outcome])
    assert refused.status_code == 400, refused.text
    assert named in refused.text
