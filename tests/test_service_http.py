"""The service's HTTP API through its ASGI app: answers, documentation, and 400s that name the field."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from tests.fakes import SETOSA, VIRGINICA


@pytest.fixture
def client(http_client: TestClient) -> TestClient:
    return http_client


def test_prediction_answers_class_probability_and_model(client: TestClient, trained_tag: str) -> None:
    response = client.post("/prediction", json=SETOSA)
    assert response.status_code == 200
    body = response.json()
    assert body["class"] == "setosa"
    assert body["model"] == trained_tag
    assert set(body["probabilities"]) == {"setosa", "versicolor", "virginica"}
    assert body["probability"] == max(body["probabilities"].values())
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_virginica_sample(client: TestClient) -> None:
    assert client.post("/prediction", json=VIRGINICA).json()["class"] == "virginica"


def test_batch_keeps_order(client: TestClient) -> None:
    response = client.post("/predict_batch", json=[VIRGINICA, SETOSA, VIRGINICA])
    assert response.status_code == 200
    assert [r["class"] for r in response.json()] == ["virginica", "setosa", "virginica"]


def test_model_info(client: TestClient, trained_tag: str) -> None:
    info = client.get("/model").json()
    assert info["tag"] == trained_tag
    assert info["runtime"] == "onnx"
    assert info["card"]["class_names"] == ["setosa", "versicolor", "virginica"]
    assert info["card"]["metrics"]["accuracy"] >= 0.9
    assert info["creation_time"]


def test_openapi_documents_endpoints_with_examples(client: TestClient, service_module) -> None:
    spec = client.get("/docs.json").json()
    first_test_row = {k: v for k, v in service_module.model.card.examples[0].items() if k != "label"}
    assert {"/prediction", "/predict_batch", "/model", "/livez", "/readyz", "/metrics"} <= set(spec["paths"])
    request_schema = spec["paths"]["/prediction"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    # One definition of a row, referenced by the body (the inline copy BentoML writes loses nulls).
    request_schema = spec["components"]["schemas"][request_schema["$ref"].rsplit("/", 1)[1]]
    assert request_schema["example"] == first_test_row
    assert request_schema["additionalProperties"] is False
    assert request_schema["required"] == list(SETOSA)


def test_swagger_ui_and_health(client: TestClient) -> None:
    assert "swagger" in client.get("/").text.lower()
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_ui_is_mounted_on_the_web_ui_services_app(service_module) -> None:
    service_module.web_ui.mount()  # what WebUI.__init__ does in the UI's own worker
    with TestClient(service_module.ui_web) as ui:
        response = ui.get("/ui/")
    assert response.status_code == 200
    assert "gradio" in response.text.lower()


def test_without_the_web_ui_service_the_api_says_so_and_keeps_answering(client: TestClient) -> None:
    # In one process (no `bentoml serve`) there is no UI worker to pass /ui on to.
    response = client.get("/ui/")
    assert response.status_code == 503
    assert "web UI" in response.json()["error"]
    assert client.post("/prediction", json=SETOSA).status_code == 200


def test_json_with_charset_and_missing_content_type_are_accepted(client: TestClient) -> None:
    body = json.dumps(SETOSA)
    assert (
        client.post(
            "/prediction", content=body, headers={"content-type": "application/json; charset=utf-8"}
        ).status_code
        == 200
    )
    assert client.post("/prediction", content=body, headers={"content-type": ""}).status_code == 200


def test_chunked_body_over_limit_is_413(client: TestClient, service_module) -> None:
    limit = service_module.settings.max_body_bytes

    def chunks():
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    response = client.post("/predict_batch", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
