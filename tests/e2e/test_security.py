"""The served bento locked down (an API key, CORS for one origin, no debug anywhere) and logging JSON lines.

With a key set, every way to a prediction needs it: the JSON API, the model card (it holds training rows)
and the web UI with its own API. Health, readiness, metrics and the API docs stay open: probes and
Prometheus scrape without credentials, and the docs hold no data.
"""

from __future__ import annotations

import json
import time

import bentoml
import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AuthenticationError
from playwright.sync_api import Browser, expect

from tests.conftest import ROOT
from tests.e2e.conftest import ALLOWED_ORIGIN, API_KEY
from tests.e2e.server import Server
from tests.fakes import SETOSA, VIRGINICA

pytestmark = pytest.mark.slow

KEY, ORIGIN = API_KEY, ALLOWED_ORIGIN


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
        assert client.prediction(**VIRGINICA)["class"] == "virginica"


def test_health_metrics_and_docs_stay_open(locked_bento: Server) -> None:
    for path in ("/livez", "/readyz", "/metrics", "/docs.json", "/"):
        assert httpx.get(f"{locked_bento.url}{path}").status_code == 200, path


@pytest.mark.parametrize("path", ["/model", "/model/notebook", "/ui/", "/ui/gradio_api/info", "/ui/config"])
def test_the_model_card_and_the_ui_need_the_key(locked_bento: Server, path: str) -> None:
    refused = httpx.get(f"{locked_bento.url}{path}")
    assert refused.status_code == 401, path
    assert refused.headers["www-authenticate"].startswith("Bearer")
    allowed = httpx.get(f"{locked_bento.url}{path}", headers={"authorization": f"Bearer {KEY}"})
    assert allowed.status_code == 200, path


def test_the_ui_api_refuses_gradio_client_without_the_key(locked_bento: Server) -> None:
    with pytest.raises(AuthenticationError, match="credentials were not provided"):
        Client(f"{locked_bento.url}/ui/", verbose=False)
    for api in ("predict", "predict_csv"):
        call = httpx.post(f"{locked_bento.url}/ui/gradio_api/call/{api}", json={"data": [*SETOSA.values()]})
        assert call.status_code == 401, api
        queued = httpx.post(
            f"{locked_bento.url}/ui/gradio_api/queue/join",
            json={"data": [*SETOSA.values()], "fn_index": 0, "session_hash": "x1"},
        )
        assert queued.status_code == 401
    metrics = httpx.get(f"{locked_bento.url}/metrics").text
    assert 'classifier_prediction_errors_total{endpoint="/prediction",kind="unauthorized"}' in metrics


def test_the_ui_answers_gradio_client_with_the_key(locked_bento: Server) -> None:
    client = Client(f"{locked_bento.url}/ui/", verbose=False, headers={"Authorization": f"Bearer {KEY}"})
    bars, _verdict, _picture = client.predict(*SETOSA.values(), api_name="/predict")
    assert bars["label"] == "setosa"


def test_a_browser_signs_in_with_the_key_then_predicts(locked_bento: Server, browser: Browser, artifacts) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(20_000)
    page.goto(f"{locked_bento.url}/ui/")
    expect(page.locator("#sign-in")).to_be_visible()  # sent to the sign-in page, not shown the UI
    page.locator("#key").fill("not-the-key-but-long-enough")
    page.locator("#sign-in").click()
    expect(page.locator("#login-error")).to_contain_text("not the API key")
    page.locator("#key").fill(KEY)
    page.locator("#sign-in").click()
    expect(page.locator("#predict-button")).to_be_visible()
    page.locator("#predict-button").click()
    expect(page.locator("#verdict")).to_contain_text("probability")
    page.screenshot(path=artifacts / "ui-signed-in.png", full_page=True)
    # The session covers the UI's links too: the model card is one click away.
    assert page.request.get(f"{locked_bento.url}/model").status == 200
    page.goto(f"{locked_bento.url}/ui/logout")  # a page with the button: following a link signs nobody out
    assert page.request.get(f"{locked_bento.url}/model").status == 200
    page.locator("#sign-out").click()
    expect(page.locator("#sign-in")).to_be_visible()
    assert page.request.get(f"{locked_bento.url}/model").status == 401
    page.close()


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


def _json_lines_with(server: Server, request_id: str, timeout: float = 10) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
        found = [line for line in lines if line.get("request_id") == request_id]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_json_access_lines_carry_the_request_id(locked_bento: Server) -> None:
    """A refused prediction and another route get an access line; an answered prediction is in the prediction log."""
    headers = {"authorization": f"Bearer {KEY}", "x-request-id": "json-log-probe-1"}
    bad = httpx.post(f"{locked_bento.url}/prediction", json={**SETOSA, "sepal_width": "wide"}, headers=headers)
    assert bad.status_code == 400
    (line,) = _json_lines_with(locked_bento, "json-log-probe-1")
    assert line["logger"] == "bentoml.access" and line["level"] == "INFO"
    assert "path=/prediction" in line["message"] and "status=400" in line["message"]
    assert line["trace_id"] is None  # prediction routes are left out of tracing unless SERVING_TRACE_PREDICTIONS
    model = httpx.get(f"{locked_bento.url}/model", headers={**headers, "x-request-id": "json-log-probe-2"})
    assert model.status_code == 200
    (line,) = _json_lines_with(locked_bento, "json-log-probe-2")
    assert "path=/model" in line["message"] and "status=200" in line["message"]
    assert line["trace_id"]  # every other route is traced
    answered = {**headers, "x-request-id": "json-log-probe-3"}
    assert httpx.post(f"{locked_bento.url}/prediction", json=SETOSA, headers=answered).status_code == 200
    # Recorded by the prediction log instead (its own tests look it up by request id).
    assert _json_lines_with(locked_bento, "json-log-probe-3", timeout=2) == []
