"""The optional API key: prediction routes need the bearer token, everything else stays open."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from serving.auth import ApiKeyGuard, bearer_token
from serving.settings import Settings

KEY = "k" * 20 + "-secret"


@pytest.fixture
def client() -> TestClient:
    async def ok(_request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/prediction", ok, methods=["POST"]), Route("/livez", ok), Route("/metrics", ok)])
    return TestClient(ApiKeyGuard(app, paths=["/prediction"], api_key=KEY))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer wrong-key-of-some-length"},
        {"authorization": f"Bearer {KEY}x"},
        {"authorization": f"Basic {KEY}"},
        {"authorization": KEY},
        {"authorization": "Bearer "},
    ],
)
def test_prediction_without_the_key_is_401_with_a_challenge(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/prediction", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["detail"][0]["loc"] == ["header", "authorization"]


def test_prediction_with_the_key_passes(client: TestClient) -> None:
    assert client.post("/prediction", headers={"authorization": f"Bearer {KEY}"}).text == "ok"
    assert client.post("/prediction", headers={"authorization": f"bearer  {KEY} "}).text == "ok"


def test_cors_preflight_passes_without_the_key(client: TestClient) -> None:
    # Starlette answers 405 for OPTIONS here; what matters is that the guard did not answer 401.
    assert client.options("/prediction").status_code != 401


def test_health_and_metrics_stay_open(client: TestClient) -> None:
    assert client.get("/livez").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_bearer_token_parsing() -> None:
    assert bearer_token({"headers": [(b"authorization", b"Bearer abc")]}) == b"abc"
    assert bearer_token({"headers": [(b"authorization", b"Token abc")]}) is None
    assert bearer_token({"headers": []}) is None


def test_api_key_is_off_by_default_and_a_short_one_is_refused() -> None:
    assert Settings.from_env({}).api_key is None
    assert Settings.from_env({"IRIS_API_KEY": KEY}).api_key == KEY
    with pytest.raises(ValueError, match="too short"):
        Settings.from_env({"IRIS_API_KEY": "short"})
    assert KEY not in repr(Settings.from_env({"IRIS_API_KEY": KEY}))


def test_cors_is_off_by_default_and_names_only_the_given_origins() -> None:
    assert Settings.from_env({}).cors() is None
    cors = Settings.from_env({"IRIS_CORS_ORIGINS": "https://a.example, https://b.example/"}).cors()
    assert cors is not None
    assert cors["allow_origins"] == ["https://a.example", "https://b.example"]
    assert "authorization" in cors["allow_headers"]  # type: ignore[operator]
