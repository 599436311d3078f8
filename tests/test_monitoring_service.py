"""Monitoring through the service's ASGI app: request ids, counted predictions and errors, the prediction log."""

from __future__ import annotations

import json
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from monitoring.context import set_request_id
from monitoring.logs import use_json_logs
from monitoring.predlog import default_prediction_log, read_records
from tests.fakes import SETOSA, VIRGINICA


def _count(name: str, **labels: str) -> float:
    # What /metrics does first: apply the single predictions gathered off the request path.
    sys.modules["service"].monitor.flush_metrics()
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _logged(request_id: str, home: Path, rows: int = 1, timeout: float = 5.0) -> list[dict]:
    directory = default_prediction_log({"BENTOML_HOME": str(home)})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [record for record in read_records(directory) if record["request_id"] == request_id]
        if len(found) >= rows:
            return found
        time.sleep(0.02)
    raise AssertionError(f"request {request_id} not in the prediction log in {directory}")


@pytest.mark.parametrize("content_type", ["application/json", "application/vnd.model-test+json"])
def test_prediction_is_counted_and_logged_under_the_callers_request_id(
    http_client: TestClient, bentoml_home: Path, trained_tag: str, content_type: str
) -> None:
    # The second content type takes BentoML's own handler instead of the fast path: both must report.
    before = _count("classifier_predictions_total", **{"class": "virginica", "source": "api"})
    request_id = "fast-path" if content_type == "application/json" else "bentoml-handler"
    response = http_client.post(
        "/prediction",
        content=json.dumps(VIRGINICA),
        headers={"content-type": content_type, "x-request-id": request_id},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == request_id
    assert _count("classifier_predictions_total", **{"class": "virginica", "source": "api"}) == before + 1
    (record,) = _logged(request_id, bentoml_home)
    assert record["features"] == VIRGINICA
    assert (record["class"], record["model"], record["source"]) == ("virginica", trained_tag, "api")
    assert record["probability"] == response.json()["probability"]
    assert record["latency_ms"] > 0


def test_batch_rows_share_the_generated_request_id(http_client: TestClient, bentoml_home: Path) -> None:
    before = _count("classifier_predictions_total", **{"class": "setosa", "source": "batch"})
    response = http_client.post("/predict_batch", json=[SETOSA, VIRGINICA, SETOSA])
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32
    assert _count("classifier_predictions_total", **{"class": "setosa", "source": "batch"}) == before + 2
    records = _logged(request_id, bentoml_home, rows=3)
    assert [r["row"] for r in records] == [0, 1, 2]
    assert [r["class"] for r in records] == ["setosa", "virginica", "setosa"]


def test_an_unusable_request_id_is_replaced(http_client: TestClient) -> None:
    response = http_client.post("/prediction", json=SETOSA, headers={"x-request-id": "bad id\twith spaces"})
    assert response.headers["x-request-id"] != "bad id\twith spaces"
    assert len(response.headers["x-request-id"]) == 32


@pytest.mark.parametrize(
    ("send", "kind"),
    [
        ({"json": {**SETOSA, "petal_width": "wide"}}, "validation"),
        ({"content": b"a,b", "headers": {"content-type": "text/csv"}}, "unsupported_media_type"),
        ({"content": b"[" + b"1," * 600_000 + b"1]", "headers": {"content-type": "application/json"}}, "too_large"),
    ],
)
def test_refused_requests_are_counted_by_kind(http_client: TestClient, send: dict, kind: str) -> None:
    before = _count("classifier_prediction_errors_total", kind=kind, endpoint="/prediction")
    response = http_client.post("/prediction", **send)
    assert 400 <= response.status_code < 500
    assert "x-request-id" in response.headers
    assert _count("classifier_prediction_errors_total", kind=kind, endpoint="/prediction") == before + 1


def test_model_info_metric(http_client: TestClient, trained_tag: str, service_module: object) -> None:
    runtime = service_module.model.predictor.runtime.name  # type: ignore[attr-defined]
    accuracy = f"{service_module.model.card.metrics.accuracy:.4f}"  # type: ignore[attr-defined]
    assert _count("classifier_model_info", model=trained_tag, runtime=runtime, accuracy=accuracy) == 1


def test_ui_predictions_are_counted_with_source_ui(http_client: TestClient, service_module: object) -> None:
    before = _count("classifier_predictions_total", **{"class": "setosa", "source": "ui"})
    (prediction,) = service_module.web_ui.predict([SETOSA])  # type: ignore[attr-defined]
    assert prediction.class_name == "setosa"
    assert _count("classifier_predictions_total", **{"class": "setosa", "source": "ui"}) == before + 1


def test_json_logs_carry_the_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("tests.json-logs")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    logger.propagate = False
    try:
        use_json_logs(("tests.json-logs",))
        set_request_id("req-42")
        logger.warning("model %s answered", "iris")
    finally:
        set_request_id(None)  # type: ignore[arg-type]
        logger.removeHandler(handler)
    line = json.loads(capsys.readouterr().err)
    assert line["message"] == "model iris answered"
    assert (line["level"], line["logger"], line["request_id"]) == ("WARNING", "tests.json-logs", "req-42")


def test_an_internal_failure_is_a_bare_500_counted_as_internal(
    http_client: TestClient, service_module: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_features: object) -> object:
        raise RuntimeError("secret detail from deep inside the model")

    monkeypatch.setattr(service_module.model.predictor.runtime, "predict_proba", broken)  # type: ignore[attr-defined]
    before = _count("classifier_prediction_errors_total", kind="internal", endpoint="/prediction")
    client = TestClient(http_client.app, raise_server_exceptions=False)
    response = client.post("/prediction", json=SETOSA)
    assert response.status_code == 500
    assert "secret detail" not in response.text and "Traceback" not in response.text
    assert _count("classifier_prediction_errors_total", kind="internal", endpoint="/prediction") == before + 1


def test_access_lines_in_bentoml_format_for_everything_but_answered_predictions(
    http_client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bentoml.access"):
        assert http_client.post("/prediction", json=SETOSA).status_code == 200  # type: ignore[attr-defined]
        assert http_client.post("/prediction", json={**SETOSA, "sepal_width": None}).status_code == 400  # type: ignore[attr-defined]
        assert http_client.get("/model").status_code == 200  # type: ignore[attr-defined]
        assert http_client.get("/livez").status_code == 200  # type: ignore[attr-defined]
    lines = [r.getMessage() for r in caplog.records if r.name == "bentoml.access"]
    assert len(lines) == 2, lines
    refused, model = lines
    assert "(scheme=http,method=POST,path=/prediction,type=application/json," in refused and "status=400" in refused
    assert "path=/model" in model and "(status=200,type=application/json," in model and model.endswith("ms")


def test_concurrent_predictions_each_get_their_own_answer_id_and_log_line(
    http_client: TestClient, bentoml_home: Path
) -> None:
    # Requests arriving together are predicted in one model call (serving/microbatch.py): none may get
    # another's answer, id or log line. 16 threads keep requests in flight on the app's one event loop.
    rows = {f"together-{i}": (SETOSA, "setosa") if i % 2 else (VIRGINICA, "virginica") for i in range(64)}

    def post(request_id: str) -> tuple[str, dict, str]:
        response = http_client.post("/prediction", json=rows[request_id][0], headers={"x-request-id": request_id})
        assert response.status_code == 200, response.text
        return request_id, response.json(), response.headers["x-request-id"]

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(post, rows))
    for request_id, answer, echoed in answers:
        assert (echoed, answer["class"]) == (request_id, rows[request_id][1])
        (record,) = _logged(request_id, bentoml_home)
        assert (record["features"], record["class"]) == (rows[request_id][0], rows[request_id][1])
        assert record["probability"] == answer["probability"]
