"""The fast prediction path answers exactly what BentoML's own handler answers, and leaves other requests alone."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from serving.jsonroutes import JsonRoutes
from tests.fakes import SETOSA, VIRGINICA

# The fast path takes application/json. BentoML's handler parses any media type it has no serde for as JSON,
# so this type reaches BentoML's own code path with the same bytes.
BENTOML_PATH = {"content-type": "application/vnd.model-test+json"}
FAST_PATH = {"content-type": "application/json"}

CASES = [
    ("/prediction", SETOSA),
    ("/prediction", VIRGINICA),
    ("/prediction", {**SETOSA, "petal_width": "wide"}),
    ("/prediction", {**SETOSA, "extra": 1}),
    ("/prediction", {}),
    ("/predict_batch", [SETOSA, VIRGINICA]),
    ("/predict_batch", [SETOSA, {**SETOSA, "sepal_length": -1}]),
    ("/predict_batch", []),
]


def test_fast_path_is_on_by_default(service_module) -> None:
    assert any(cls is JsonRoutes for cls, _ in service_module.Classifier.middlewares)


@pytest.mark.parametrize(("path", "body"), CASES)
def test_same_answer_as_bentoml_handler(http_client: TestClient, path: str, body: object) -> None:
    fast, plain = (http_client.post(path, content=json.dumps(body), headers=h) for h in (FAST_PATH, BENTOML_PATH))
    assert fast.status_code == plain.status_code
    assert fast.json() == plain.json()
    assert fast.headers["content-type"] == plain.headers["content-type"]


def test_invalid_json_same_answer(http_client: TestClient) -> None:
    fast, plain = (http_client.post("/prediction", content=b"{nope", headers=h) for h in (FAST_PATH, BENTOML_PATH))
    assert (fast.status_code, fast.json()) == (plain.status_code, plain.json())


def test_other_routes_and_methods_pass_through(http_client: TestClient) -> None:
    assert http_client.get("/prediction").status_code == 405
    assert http_client.get("/model").status_code == 200
