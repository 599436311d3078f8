"""The built bento served for real, reached the four ways a user would: raw HTTP, the Python client, the UI, Swagger."""

from __future__ import annotations

import subprocess
import sys

import bentoml
import httpx
import pytest
from gradio_client import Client

from tests.conftest import ROOT
from tests.e2e.server import Server
from tests.fakes import SETOSA, VIRGINICA

pytestmark = pytest.mark.slow


def test_raw_http_prediction(served_bento: Server, trained_tag: str) -> None:
    response = httpx.post(f"{served_bento.url}/prediction", json=SETOSA)
    assert response.status_code == 200
    assert response.json()["class"] == "setosa"
    assert response.json()["model"] == trained_tag
    assert httpx.post(f"{served_bento.url}/prediction", json=VIRGINICA).json()["class"] == "virginica"


def test_raw_http_bad_input_is_400_naming_field(served_bento: Server) -> None:
    response = httpx.post(f"{served_bento.url}/prediction", json={**SETOSA, "petal_width": "thin"})
    assert response.status_code == 400
    assert response.json()["detail"][0]["loc"] == ["petal_width"]


def test_python_client_single_and_batch(served_bento: Server) -> None:
    with bentoml.SyncHTTPClient(served_bento.url) as client:
        # BentoML's way: the features are the API's keyword arguments.
        assert client.prediction(**SETOSA)["class"] == "setosa"
        assert client.prediction(sepal_length=6.7, sepal_width=3.0, petal_length=5.2, petal_width=2.3)["class"] == (
            "virginica"
        )
        batch = client.predict_batch([SETOSA, VIRGINICA])
    assert [row["class"] for row in batch] == ["setosa", "virginica"]


def test_ui_predicts_through_gradio_client(served_bento: Server) -> None:
    client = Client(f"{served_bento.url}/ui/", verbose=False)
    bars, verdict, picture = client.predict(*VIRGINICA.values(), api_name="/predict")
    assert bars["label"] == "virginica"
    assert {c["label"] for c in bars["confidences"]} == {"setosa", "versicolor", "virginica"}
    assert "virginica" in verdict
    assert ["this row"] in [row[-1:] for row in picture["data"]]


def test_builtins_stay_on(served_bento: Server) -> None:
    for path in ("/livez", "/readyz", "/docs.json", "/", "/ui/", "/model"):
        assert httpx.get(f"{served_bento.url}{path}").status_code == 200, path
    httpx.post(f"{served_bento.url}/prediction", json=SETOSA)
    metrics = httpx.get(f"{served_bento.url}/metrics").text
    assert 'endpoint="/prediction"' in metrics
    assert "bentoml_service_request_duration_seconds" in metrics


def test_serve_to_ready_is_reported(served_bento: Server) -> None:
    # Recorded for the closing note and README; the target itself is checked by the benchmark, not here.
    print(f"bento serve-to-ready: {served_bento.seconds_to_ready:.1f} s")  # noqa: T201
    assert served_bento.seconds_to_ready > 0


def test_client_example_script_runs(served_bento: Server) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "client.py"), served_bento.url], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "Iris species classifier" in result.stdout and '"class": "setosa"' in result.stdout
