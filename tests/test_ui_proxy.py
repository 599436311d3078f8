"""The /ui pass-through's limits, against a real upstream server on a Unix socket (uvicorn, as the UI service)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from serving.uiproxy import UPLOAD_OVERHEAD_BYTES, UiProxy, _fetches_a_url, _is_stream, _PartCounter
from tests.loops import run_async

LIMIT = 10_000


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    headers = {"authorization": "Bearer leaked", "access-control-allow-origin": "*", "date": "then", "x-kept": "1"}
    return JSONResponse({"bytes": len(body), "headers": dict(request.headers)}, headers=headers)


async def stream(request: Request) -> StreamingResponse:
    async def beats() -> object:
        while True:
            yield b"data: beat\n\n"
            await asyncio.sleep(0.05)

    return StreamingResponse(beats(), media_type="text/event-stream")


UPSTREAM = Starlette(
    routes=[
        Route("/ui/gradio_api/upload", echo, methods=["POST"]),
        Route("/ui/gradio_api/call/predict", echo, methods=["POST"]),
        Route("/ui/config", echo),
        Route("/ui/gradio_api/heartbeat/{session}", stream),
        Route("/readyz", lambda request: PlainTextResponse("\n")),
    ]
)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The UI service's stand-in, served by uvicorn on a Unix socket."""
    path = str(tmp_path_factory.mktemp("ui") / "ui.sock")
    server = uvicorn.Server(uvicorn.Config(UPSTREAM, uds=path, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    yield path
    server.should_exit = True
    thread.join(5)


def proxy(socket: str | None, **options: object) -> TestClient:
    app = UiProxy(lambda: socket, max_body_bytes=LIMIT, **options)  # type: ignore[arg-type]
    return TestClient(app, base_url="http://model.example")


def multipart(*files: bytes, boundary: str = "b0undary") -> tuple[bytes, dict[str, str]]:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="f{i}.csv"\r\n\r\n'.encode()
        + content
        + b"\r\n"
        for i, content in enumerate(files)
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), {
        "content-type": f"multipart/form-data; boundary={boundary}"
    }


def test_a_request_passes_with_what_the_browser_sent(upstream: str) -> None:
    client = proxy(upstream)
    del client.headers["accept-encoding"]  # a client that asks for no compression gets none
    answer = client.post("/ui/gradio_api/call/predict", json={"data": [1]}, headers={"x-mine": "y"})
    assert answer.status_code == 200
    sent = answer.json()["headers"]
    assert sent["x-mine"] == "y" and "accept-encoding" not in sent
    # Echoed credentials, Gradio's own CORS and a second Date never reach the browser; the rest does.
    assert "authorization" not in answer.headers and "access-control-allow-origin" not in answer.headers
    assert answer.headers.get("date") != "then" and answer.headers["x-kept"] == "1"


def test_an_upload_over_the_size_cap_is_cut_off_as_it_streams(upstream: str) -> None:
    client = proxy(upstream)
    body, headers = multipart(b"x" * (LIMIT + UPLOAD_OVERHEAD_BYTES + 1))

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    refused = client.post("/ui/gradio_api/upload", content=chunks(), headers=headers)  # no Content-Length
    assert refused.status_code == 413 and "over" in refused.json()["error"]
    declared = client.post("/ui/gradio_api/upload", content=body, headers=headers)
    assert declared.status_code == 413
    fits, headers = multipart(b"a,b\n1,2\n")
    assert client.post("/ui/gradio_api/upload", content=fits, headers=headers).json()["bytes"] == len(fits)


def test_an_upload_of_more_files_than_the_ui_takes_is_refused(upstream: str) -> None:
    body, headers = multipart(b"a", b"b")
    refused = proxy(upstream).post("/ui/gradio_api/upload", content=body, headers=headers)
    assert refused.status_code == 413 and "1 file" in refused.json()["error"]


def test_a_boundary_split_across_chunks_is_still_counted() -> None:
    body, headers = multipart(b"a", b"b", b"c", boundary="split-me")
    counter = _PartCounter({"headers": [(b"content-type", headers["content-type"].encode())]})
    counts = [counter.files(body[i : i + 3]) for i in range(0, len(body), 3)]
    assert counts[-1] == 3 and counts == sorted(counts)


def test_a_state_changing_call_from_another_site_is_refused(upstream: str) -> None:
    client = proxy(upstream, allowed_origins=["https://app.example"])
    path, body = "/ui/gradio_api/call/predict", {"data": [1]}
    refused = client.post(path, json=body, headers={"origin": "https://evil.example"})
    assert refused.status_code == 403 and refused.json()["detail"][0]["loc"] == ["header", "origin"]
    for origin in ("http://model.example", "https://app.example", None):
        headers = {"origin": origin} if origin else {}
        assert client.post(path, json=body, headers=headers).status_code == 200, origin
    assert client.get("/ui/config", headers={"origin": "https://evil.example"}).status_code == 200  # reading


def test_streams_have_a_pool_of_their_own_and_a_cap(upstream: str) -> None:
    app = UiProxy(lambda: upstream, max_body_bytes=LIMIT, max_streams=2, connections=2)
    client = TestClient(app)
    opened = [client.stream("GET", f"/ui/gradio_api/heartbeat/s{i}") for i in range(2)]
    responses = [context.__enter__() for context in opened]
    try:
        assert [r.status_code for r in responses] == [200, 200] and app.open_streams == 2
        assert client.get("/ui/gradio_api/heartbeat/third").status_code == 503  # at once, not after a timeout
        started = time.monotonic()
        assert client.get("/ui/config").status_code == 200  # ordinary requests are not queued behind streams
        assert time.monotonic() - started < 2
    finally:
        for context in opened:
            context.__exit__(None, None, None)


def test_gradios_routes_that_fetch_another_address_are_refused(upstream: str) -> None:
    client = proxy(upstream)
    for path in (
        "/ui/gradio_api/file=https://example.com/a.csv",
        "/ui/gradio_api/file=HTTP://example.com/a.csv",
        "/ui/gradio_api/file=//example.com/a.csv",
        "/ui/gradio_api/proxy=https://example.com/x",
    ):
        refused = client.get(path)
        assert refused.status_code == 403 and refused.json()["detail"][0]["loc"] == ["path"], path
    assert not _fetches_a_url("/ui/gradio_api/file=/tmp/model-ui-x/gradio/abc/a.csv")


def test_which_requests_are_streams() -> None:
    def scope(method: str, path: str, accept: bytes = b"*/*") -> dict[str, object]:
        return {"method": method, "path": path, "headers": [(b"accept", accept)]}

    assert _is_stream(scope("GET", "/ui/gradio_api/heartbeat/abc"))
    assert _is_stream(scope("GET", "/ui/gradio_api/queue/data"))
    assert _is_stream(scope("GET", "/ui/anything", b"text/event-stream"))
    assert not _is_stream(scope("GET", "/ui/config"))
    assert not _is_stream(scope("POST", "/ui/gradio_api/call/predict"))


def test_a_websocket_is_refused_at_once_and_no_ui_is_a_503() -> None:
    client = proxy(None)
    assert client.get("/ui/config").status_code == 503
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ui/ws"):
        pass


def test_the_ui_health_is_reported_once_it_was_ready(upstream: str, tmp_path: Path) -> None:
    async def check(app: UiProxy) -> bool:
        app._checked_at = -1e9  # ask again now
        return await app.healthy()

    ready = UiProxy(lambda: upstream, max_body_bytes=LIMIT)
    assert run_async(lambda: check(ready)) is True
    starting = UiProxy(lambda: str(tmp_path / "missing.sock"), max_body_bytes=LIMIT, ui_started=lambda: False)
    assert run_async(lambda: check(starting)) is True  # never ready yet: starting, the API stays ready
    gone = UiProxy(lambda: str(tmp_path / "missing.sock"), max_body_bytes=LIMIT, ui_started=lambda: True)
    assert run_async(lambda: check(gone)) is False  # it was ready once, and now does not answer
