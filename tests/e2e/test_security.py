"""The served bento locked down (an API key, CORS for one origin, no debug anywhere) and logging JSON lines."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import bentoml
import httpx
import pytest
from gradio_client import Client

from tests.conftest import ROOT
from tests.e2e.server import Server, serve
from tests.fakes import SETOSA, VIRGINICA

pytestmark = pytest.mark.slow

KEY = "test-key-0123456789abcdef"
ORIGIN = "https://app.example"


@pytest.fixture(scope="module")
def locked_bento(bento_tag: str, tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> Iterator[Server]:
    env = {"IRIS_API_KEY": KEY, "IRIS_CORS_ORIGINS": ORIGIN, "IRIS_LOG_FORMAT": "json"}
    log = artifacts / "serve-locked-bento.log"
    with serve(bento_tag, cwd=tmp_path_factory.mktemp("locked"), log=log, env=env) as server:
        yield server


def test_prediction_routes_need_the_key(locked_bento: Server) -> None:
    for path, body in (("/prediction", SETOSA), ("/predict_batch", [SETOSA])):
        refused = httpx.post(f"{locked_bento.url}{path}", json=body)
        assert refused.status_code == 401, path
        assert refused.headers["www-authenticate"].startswith("Bearer")
        wrong = httpx.post(f"{locked_bento.url}{path}", json=body, headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        allowed = httpx.post(f"{locked_bento.url}{path}", json=body, headers={"authorization": f"Bearer {KEY}"})
        assert allowed.status_code == 200, path


def test_python_client_passes_the_key_as_its_token(locked_bento: Server) -> None:
    with bentoml.SyncHTTPClient(locked_bento.url, token=KEY) as client:
        assert client.prediction(VIRGINICA)["class"] == "virginica"


def test_health_metrics_docs_and_ui_stay_open(locked_bento: Server) -> None:
    for path in ("/livez", "/readyz", "/metrics", "/docs.json", "/", "/ui/"):
        assert httpx.get(f"{locked_bento.url}{path}").status_code == 200, path
    client = Client(f"{locked_bento.url}/ui/", verbose=False)
    bars, _verdict, _picture = client.predict(*SETOSA.values(), api_name="/predict")
    assert bars["label"] == "setosa"
    metrics = httpx.get(f"{locked_bento.url}/metrics").text
    assert 'iris_prediction_errors_total{endpoint="/prediction",kind="unauthorized"}' in metrics


def test_cors_allows_the_configured_origin_only(locked_bento: Server) -> None:
    def preflight(origin: str) -> httpx.Response:
        headers = {
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        }
        return httpx.options(f"{locked_bento.url}/prediction", headers=headers)

    allowed = preflight(ORIGIN)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    refused = preflight("https://evil.example")
    assert "access-control-allow-origin" not in refused.headers
    answer = httpx.post(
        f"{locked_bento.url}/prediction", json=SETOSA, headers={"origin": ORIGIN, "authorization": f"Bearer {KEY}"}
    )
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()


def test_cors_is_off_by_default(served_bento: Server) -> None:
    response = httpx.post(f"{served_bento.url}/prediction", json=SETOSA, headers={"origin": ORIGIN})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_no_served_configuration_runs_in_debug_or_development_mode() -> None:
    files = [
        ROOT / "Makefile",
        ROOT / "bentofile.yaml",
        ROOT / "scripts" / "build.sh",
        *(ROOT / "deploy" / "kubernetes").glob("*.yaml"),
    ]
    for path in files:
        text = path.read_text()
        for flag in ("--development", "--reload", "debug=True", "BENTOML_DEBUG"):
            assert flag not in text, f"{flag} in {path.relative_to(ROOT)}"


def test_json_log_lines_carry_the_request_id(locked_bento: Server) -> None:
    headers = {"authorization": f"Bearer {KEY}", "x-request-id": "json-log-probe-1"}
    assert httpx.post(f"{locked_bento.url}/prediction", json=SETOSA, headers=headers).status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in locked_bento.log.read_text().splitlines() if line.startswith("{")]
        access = [line for line in lines if line.get("request_id") == "json-log-probe-1"]
        if access:
            break
        time.sleep(0.2)
    assert access, "no JSON log line with the request id"
    (line,) = access
    assert line["logger"] == "bentoml.access" and "path=/prediction" in line["message"]
    assert line["level"] == "INFO" and line["trace_id"]
