"""Security headers: on every answer, the page policy on HTML only, no caching of pages and redirects."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from serving.headers import ALWAYS, PAGE_POLICY, SecurityHeaders
from tests.loops import run_async

OWN = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'",
    "cache-control": "private, max-age=5",
}


def _routes() -> list[Route]:
    def answer(response: Response) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(_request: Request) -> Response:
            return response

        return endpoint

    answers: dict[str, Response] = {
        "/page": HTMLResponse("<p>hi</p>"),
        "/cached-page": HTMLResponse("<p>hi</p>", headers={"cache-control": "public, max-age=60"}),
        "/own-headers": HTMLResponse("<p>hi</p>", headers=OWN),
        "/json": JSONResponse({"ok": True}),
        "/text": PlainTextResponse("ok"),
        "/redirect": RedirectResponse("/page"),
        "/cached-redirect": RedirectResponse("/page", status_code=301, headers={"cache-control": "max-age=60"}),
    }
    return [Route(path, answer(response)) for path, response in answers.items()]


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(SecurityHeaders(Starlette(routes=_routes())), follow_redirects=False)


@pytest.mark.parametrize("path", ["/page", "/cached-page", "/json", "/text", "/redirect", "/cached-redirect", "/nope"])
def test_every_answer_has_the_headers_once(client: TestClient, path: str) -> None:
    response = client.get(path)
    for name, value in ALWAYS:
        assert response.headers.get_list(name.decode()) == [value.decode()]


def test_an_unknown_path_gets_them_too(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert "content-security-policy" not in response.headers
    assert "cache-control" not in response.headers


def test_an_html_page_gets_the_policy_and_no_store(client: TestClient) -> None:
    response = client.get("/page")
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers.get_list("content-security-policy") == [PAGE_POLICY.decode()]
    assert response.headers.get_list("cache-control") == ["no-store"]
    assert response.text == "<p>hi</p>"


@pytest.mark.parametrize("path", ["/json", "/text"])
def test_other_answers_get_no_policy_and_may_be_cached(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert "content-security-policy" not in response.headers
    assert "cache-control" not in response.headers


def test_a_redirect_is_not_stored_and_gets_no_policy(client: TestClient) -> None:
    response = client.get("/redirect")
    assert response.status_code == 307
    assert response.headers["location"] == "/page"
    assert response.headers.get_list("cache-control") == ["no-store"]
    assert "content-security-policy" not in response.headers


@pytest.mark.parametrize(
    ("path", "cache_control"), [("/cached-page", "public, max-age=60"), ("/cached-redirect", "max-age=60")]
)
def test_an_answers_own_cache_control_is_kept(client: TestClient, path: str, cache_control: str) -> None:
    assert client.get(path).headers.get_list("cache-control") == [cache_control]


def test_headers_the_answer_has_are_kept_and_not_duplicated(client: TestClient) -> None:
    response = client.get("/own-headers")
    for name, value in OWN.items():
        assert response.headers.get_list(name) == [value]


def test_header_names_are_matched_whatever_their_case() -> None:
    async def raw_app(_scope: Scope, _receive: Receive, send: Send) -> None:
        headers = [(b"Content-Type", b"text/html; charset=utf-8"), (b"X-Frame-Options", b"DENY")]
        headers.append((b"Cache-Control", b"max-age=5"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"<p>hi</p>"})

    response = TestClient(SecurityHeaders(raw_app)).get("/")
    assert response.headers.get_list("x-frame-options") == ["DENY"]
    assert response.headers.get_list("cache-control") == ["max-age=5"]
    assert response.headers.get_list("content-security-policy") == [PAGE_POLICY.decode()]


def test_other_scopes_pass_untouched() -> None:
    seen: list[tuple[Scope, Receive, Send]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, receive, send))

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(_message: Message) -> None:
        return None

    scope: Scope = {"type": "lifespan"}
    run_async(lambda: SecurityHeaders(app)(scope, receive, send))
    assert seen == [(scope, receive, send)]
