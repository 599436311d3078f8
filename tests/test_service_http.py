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


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({k: v for k, v in SETOSA.items() if k != "sepal_width"}, ["sepal_width"]),
        ({**SETOSA, "stem_length": 3.0}, ["stem_length"]),
        ({**SETOSA, "petal_width": None}, ["petal_width"]),
        ({**SETOSA, "petal_width": "wide"}, ["petal_width"]),
        ({**SETOSA, "petal_width": -0.2}, ["petal_width"]),
        ({**SETOSA, "petal_width": 10_000}, ["petal_width"]),
    ],
)
def test_bad_field_gets_400_naming_it(client: TestClient, body: dict, loc: list) -> None:
    response = client.post("/prediction", json=body)
    assert response.status_code == 400
    assert [error["loc"] for error in response.json()["detail"]] == [loc]


def test_nan_literal_gets_400(client: TestClient) -> None:
    body = '{"sepal_length": NaN, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}'
    response = client.post("/prediction", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["sepal_length"]


def test_invalid_json_gets_400(client: TestClient) -> None:
    response = client.post("/prediction", content="{bad", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_batch_names_the_bad_row(client: TestClient) -> None:
    response = client.post("/predict_batch", json=[SETOSA, SETOSA, {**SETOSA, "sepal_length": "x"}])
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["root", 2, "sepal_length"]


def test_batch_over_maximum_is_refused(client: TestClient, service_module) -> None:
    rows = [SETOSA] * (service_module.settings.max_batch_rows + 1)
    response = client.post("/predict_batch", json=rows)
    assert response.status_code == 400
    assert response.json()["detail"][0]["type"] == "too_long"


def test_empty_batch_is_refused(client: TestClient) -> None:
    assert client.post("/predict_batch", json=[]).status_code == 400


def test_openapi_documents_endpoints_with_examples(client: TestClient, service_module) -> None:
    spec = client.get("/docs.json").json()
    first_test_row = {k: v for k, v in service_module.card.examples[0].items() if k != "label"}
    assert {"/prediction", "/predict_batch", "/model", "/livez", "/readyz", "/metrics"} <= set(spec["paths"])
    request_schema = spec["paths"]["/prediction"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert request_schema["example"] == first_test_row
    assert request_schema["required"] == list(SETOSA)


def test_swagger_ui_and_health(client: TestClient) -> None:
    assert "swagger" in client.get("/").text.lower()
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_ui_is_mounted(client: TestClient) -> None:
    response = client.get("/ui/")
    assert response.status_code == 200
    assert "gradio" in response.text.lower()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_wrong_content_type_is_415(client: TestClient, content_type: str) -> None:
    response = client.post("/prediction", content=json.dumps(SETOSA), headers={"content-type": content_type})
    assert response.status_code == 415
    assert response.json()["detail"][0]["loc"] == ["header", "content-type"]


def test_json_with_charset_and_missing_content_type_are_accepted(client: TestClient) -> None:
    body = json.dumps(SETOSA)
    assert (
        client.post(
            "/prediction", content=body, headers={"content-type": "application/json; charset=utf-8"}
        ).status_code
        == 200
    )
    assert client.post("/prediction", content=body, headers={"content-type": ""}).status_code == 200


def test_body_over_limit_is_413(client: TestClient, service_module) -> None:
    limit = service_module.settings.max_body_bytes
    response = client.post(
        "/predict_batch", content=b"[" + b" " * limit + b"]", headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["detail"][0]["loc"] == ["body"]


def test_chunked_body_over_limit_is_413(client: TestClient, service_module) -> None:
    limit = service_module.settings.max_body_bytes

    def chunks():
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    response = client.post("/predict_batch", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_empty_body_names_every_missing_field(client: TestClient) -> None:
    response = client.post("/prediction", content=b"", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert [e["loc"] for e in response.json()["detail"]] == [[name] for name in SETOSA]
