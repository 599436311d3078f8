"""The optional API key: predictions, the model card and the web UI need it; health, metrics and docs stay open."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from serving.auth import SESSION_COOKIE, ApiKeyGuard, SessionSigner, bearer_token
from serving.settings import Settings

KEY = "k" * 20 + "-secret"


@pytest.fixture
def client() -> TestClient:
    async def ok(_request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    routes = [
        Route("/prediction", ok, methods=["POST"]),
        Route("/livez", ok),
        Route("/metrics", ok),
        Route("/ui/", ok),
        Route("/ui/gradio_api/info", ok),
        Route("/ui/gradio_api/queue/join", ok, methods=["POST"]),
    ]
    guard = ApiKeyGuard(Starlette(routes=routes), api_key=KEY, paths=["/prediction"], prefixes=["/ui"])
    return TestClient(guard, follow_redirects=False)


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
    assert Settings.from_env({"SERVING_API_KEY": KEY}).api_key == KEY
    with pytest.raises(ValueError, match="too short"):
        Settings.from_env({"SERVING_API_KEY": "short"})
    assert KEY not in repr(Settings.from_env({"SERVING_API_KEY": KEY}))


def test_cors_is_off_by_default_and_names_only_the_given_origins() -> None:
    assert Settings.from_env({}).cors() is None
    cors = Settings.from_env({"SERVING_CORS_ORIGINS": "https://a.example, https://b.example/"}).cors()
    assert cors is not None
    assert cors["allow_origins"] == ["https://a.example", "https://b.example"]
    assert "authorization" in cors["allow_headers"]  # type: ignore[operator]


@pytest.mark.parametrize(("method", "path"), [("GET", "/ui/gradio_api/info"), ("POST", "/ui/gradio_api/queue/join")])
def test_the_ui_api_needs_the_key_like_the_json_api(client: TestClient, method: str, path: str) -> None:
    refused = client.request(method, path)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert client.request(method, path, headers={"authorization": f"Bearer {KEY}"}).text == "ok"


def test_a_browser_is_sent_to_sign_in_then_carries_a_session(client: TestClient) -> None:
    page = client.get("/ui/", headers={"accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 303 and page.headers["location"] == "/ui/login"
    form = client.get("/ui/login")
    assert form.status_code == 200 and 'name="key"' in form.text
    wrong = client.post("/ui/login", data={"key": "not-the-key-at-all"})
    assert wrong.status_code == 401 and "not the API key" in wrong.text
    assert SESSION_COOKIE not in wrong.cookies
    signed_in = client.post("/ui/login", data={"key": KEY})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/ui/"
    set_cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie and "Path=/" in set_cookie
    session = signed_in.cookies[SESSION_COOKIE]
    assert client.get("/ui/", cookies={SESSION_COOKIE: session}).text == "ok"
    assert client.post("/ui/gradio_api/queue/join", cookies={SESSION_COOKIE: session}).text == "ok"
    assert client.post("/prediction", cookies={SESSION_COOKIE: session}).text == "ok"
    page = client.get("/ui/logout", cookies={SESSION_COOKIE: session})
    assert page.status_code == 200 and 'id="sign-out"' in page.text  # a link or prefetch signs nobody out
    assert client.get("/ui/", cookies={SESSION_COOKIE: session}).text == "ok"
    forgotten = client.post("/ui/logout", cookies={SESSION_COOKIE: session})
    assert forgotten.status_code == 303 and "Max-Age=0" in forgotten.headers["set-cookie"]
    # A copy of the cookie kept after signing out is refused too, not only forgotten by the browser.
    assert client.get("/ui/gradio_api/info", cookies={SESSION_COOKIE: session}).status_code == 401


def test_a_session_signed_out_in_one_worker_is_refused_by_the_others(tmp_path: Path) -> None:
    async def ok(_request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/ui/", ok)])
    workers = [
        TestClient(ApiKeyGuard(app, api_key=KEY, paths=[], prefixes=["/ui"], revoked_folder=tmp_path)) for _ in range(2)
    ]
    session = workers[0].post("/ui/login", data={"key": KEY}, follow_redirects=False).cookies[SESSION_COOKIE]
    other = SessionSigner(KEY.encode()).issue()
    for worker in workers:
        assert worker.get("/ui/", cookies={SESSION_COOKIE: session}).text == "ok"
    workers[0].post("/ui/logout", cookies={SESSION_COOKIE: session}, follow_redirects=False)
    assert workers[1].get("/ui/", cookies={SESSION_COOKIE: session}).status_code == 401
    assert workers[1].get("/ui/", cookies={SESSION_COOKIE: other}).text == "ok"  # only that session ended


def test_behind_tls_the_session_cookie_is_secure(client: TestClient) -> None:
    plain = client.post("/ui/login", data={"key": KEY})
    assert "Secure" not in plain.headers["set-cookie"]
    proxied = client.post("/ui/login", data={"key": KEY}, headers={"x-forwarded-proto": "https"})
    assert proxied.headers["set-cookie"].endswith("; Secure")
    direct = TestClient(client.app, base_url="https://testserver", follow_redirects=False)
    assert direct.post("/ui/login", data={"key": KEY}).headers["set-cookie"].endswith("; Secure")


@pytest.mark.parametrize(
    "token",
    [
        "\u00b2.x",  # '²'.isdigit() is true, int('²') raises: this was a 500 with a traceback
        "9" * 5000 + ".x",
        "1.2.3",
        "é" * 40,
        "..",
        f"{'9' * 12}.{'0' * 32}.{'f' * 64}",
        "\x00\x01",
    ],
)
def test_a_malformed_session_cookie_is_a_401(client: TestClient, token: str) -> None:
    headers = {"cookie": f"{SESSION_COOKIE}={token}".encode("latin-1")}  # raw bytes, as a client may send
    refused = client.get("/ui/gradio_api/info", headers=headers)
    assert refused.status_code == 401
    assert SessionSigner(KEY.encode()).valid(token) is False


def test_a_forged_or_expired_session_is_refused(client: TestClient) -> None:
    signer = SessionSigner(KEY.encode(), lifetime_s=60)
    expired = signer.issue(now=0)
    other_key = SessionSigner(b"another-key-of-enough-length").issue()
    expiry, _, mac = signer.issue().partition(".")
    stretched = f"{int(expiry) + 10**6}.{mac}"
    for token in (expired, other_key, stretched, "", "garbage", f"{expiry}."):
        assert client.get("/ui/gradio_api/info", cookies={SESSION_COOKIE: token}).status_code == 401, token
    assert signer.valid(signer.issue())


def test_behind_a_path_prefix_the_browser_is_sent_to_public_paths() -> None:
    async def ok(_request: object) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/ui/", ok)])
    guard = ApiKeyGuard(app, api_key=KEY, paths=[], prefixes=["/ui"], public_root="/models/churn")
    client = TestClient(guard, follow_redirects=False)
    assert client.get("/ui/", headers={"accept": "text/html"}).headers["location"] == "/models/churn/ui/login"
    assert 'action="/models/churn/ui/login"' in client.get("/ui/login").text
    signed_in = client.post("/ui/login", data={"key": KEY})
    assert signed_in.headers["location"] == "/models/churn/ui/"
    assert "Path=/models/churn/" in signed_in.headers["set-cookie"]
